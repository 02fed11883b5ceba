"""Caption decoding: KV-cached greedy equals uncached greedy; beam search with beam 1 equals greedy."""
import jax
import jax.numpy as jnp
import numpy as np

from rsvlm_jax.evaluate import decode
from rsvlm_jax.models import rsvlm


def _model_and_params():
  model = rsvlm.Model(vocab_size=23, image={"variant": "mu/8", "posemb_grid": (4, 4)},
                      text={"width": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64, "max_len": 10},
                      decoder={"width": 32, "depth": 2, "num_heads": 2, "mlp_dim": 64, "max_len": 10},
                      embed_dim=16)
  batch = {"image": jnp.zeros((2, 32, 32, 3)), "text": jnp.ones((2, 10), jnp.int32)}
  params = model.init(jax.random.key(0), batch)["params"]
  # Sharpen the output layer so decoding is not a tie-fest.
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: x * 8.0 if "logits" in jax.tree_util.keystr(p) else x, params)
  return model, params


def test_cached_greedy_equals_uncached():
  model, params = _model_and_params()
  img = jax.random.normal(jax.random.key(1), (3, 20, 128))
  cached = jax.jit(lambda p, x: decode.greedy(model, p, x, 10, use_cache=True))(params, img)
  full = jax.jit(lambda p, x: decode.greedy(model, p, x, 10, use_cache=False))(params, img)
  np.testing.assert_array_equal(np.asarray(cached), np.asarray(full))
  assert cached.shape == (3, 10)


def test_beam_one_equals_greedy_and_beam_scores_at_least_greedy():
  model, params = _model_and_params()
  img = jax.random.normal(jax.random.key(2), (2, 20, 128))
  greedy = decode.greedy(model, params, img, 10)
  beam1 = decode.beam_search(model, params, img, 10, beam_size=1, length_penalty=0.0)
  np.testing.assert_array_equal(np.asarray(greedy), np.asarray(beam1))
  beam4 = decode.beam_search(model, params, img, 10, beam_size=4, length_penalty=0.0)
  assert beam4.shape == (2, 10)

  def logprob(seq):
    logits = model.apply({"params": params}, img, rsvlm.shift_right(seq), method=rsvlm.Model.decode_logits)
    lp = jax.nn.log_softmax(logits)
    tok_lp = jnp.take_along_axis(lp, seq[..., None], -1)[..., 0]
    return np.asarray((tok_lp * (seq != 0)).sum(-1))

  assert np.all(logprob(beam4) >= logprob(greedy) - 1e-4)
