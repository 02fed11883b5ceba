"""ViT: variants by name, any grid through one set of parameters, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsvlm_jax.runtime import mixed_batch
from rsvlm_jax.models import rsvlm
from rsvlm_jax.models import vit
from rsvlm_jax import vit_variants


def test_decode_variant():
  assert vit_variants.decode("B/16") == dict(width=768, depth=12, mlp_dim=3072, num_heads=12, patch_size=16)
  assert vit_variants.decode("L/14")["patch_size"] == 14
  with pytest.raises(ValueError, match="Unknown ViT variant 'X/16'"):
    vit_variants.decode("X/16")


def test_one_parameter_set_for_every_bucket():
  model = vit.ViT(variant="pico/8", posemb_grid=(4, 4))
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  for res in (32, 48, 64):
    pooled, out = model.apply({"params": params}, jnp.ones((2, res, res, 3)))
    assert pooled.shape == (2, 64) and out["tokens"].shape == (2, (res // 8) ** 2, 64)
    assert out["grid"] == (res // 8, res // 8)


def test_bad_image_size():
  model = vit.ViT(variant="pico/8", posemb_grid=(4, 4))
  with pytest.raises(ValueError, match="not divisible by the patch size 8"):
    model.init(jax.random.key(0), jnp.zeros((1, 30, 30, 3)))


def test_composite_model_outputs():
  model = rsvlm.Model(vocab_size=50, image={"variant": "pico/8", "posemb_grid": (4, 4)},
                      text={"width": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64, "max_len": 8},
                      decoder={"width": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64, "max_len": 8}, embed_dim=16)
  batch = {"image": jnp.zeros((2, 32, 32, 3)), "text": jnp.array([[5, 6, 3, 0, 0, 0, 0, 0]] * 2),
           "phrases": jnp.zeros((2, 3, 4), jnp.int32).at[:, 0, 0].set(7),
           "obj_boxes": jnp.tile(jnp.array([0.1, 0.1, 0.4, 0.4]), (2, 5, 1)), "obj_mask": jnp.ones((2, 5), bool),
           "obj_names": jnp.ones((2, 5, 4), jnp.int32), "obj_labels": jnp.zeros((2, 5), jnp.int32)}
  params = model.init(jax.random.key(0), batch)["params"]
  z, out = model.apply({"params": params}, batch)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(z), axis=-1), 1.0, rtol=1e-4)
  assert out["caption_logits"].shape == (2, 8, 50)
  assert out["region_emb"].shape == (2, 9, 16) and out["phrase_emb"].shape == (2, 3, 16)
  assert out["phrase_mask"].tolist() == [[True, False, False]] * 2
  assert out["object_emb"].shape == (2, 5, 16) and out["object_text_emb"].shape == (2, 5, 16)


def test_mixed_batch_equals_separate_calls():
  """A mixed batch (images as a PerBucket of per-bucket arrays) gives, row for row, what each sub-batch gives alone."""
  model = rsvlm.Model(vocab_size=50, image={"variant": "pico/8", "posemb_grid": (4, 4)},
                      text={"width": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64, "max_len": 8},
                      decoder={"width": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64, "max_len": 8}, embed_dim=16)
  rng = np.random.default_rng(0)

  def sub(n, res):
    boxes = np.sort(rng.random((n, 4, 2)), -1)
    return {"image": jnp.asarray(rng.normal(size=(n, res, res, 3)), jnp.float32),
            "text": jnp.asarray(rng.integers(3, 50, size=(n, 8))),
            "phrases": jnp.asarray(rng.integers(0, 50, size=(n, 3, 4))),
            "obj_boxes": jnp.asarray(np.concatenate([boxes[..., :1], boxes[..., :1], boxes[..., 1:], boxes[..., 1:]], -1)),
            "obj_mask": jnp.asarray(rng.random((n, 4)) > 0.3), "obj_names": jnp.asarray(rng.integers(3, 50, (n, 4, 4))),
            "obj_labels": jnp.zeros((n, 4), jnp.int32)}

  small, large = sub(3, 32), sub(2, 48)
  params = model.init(jax.random.key(0), small)["params"]
  mixed = mixed_batch.combine([small, large])  # As the host pipeline builds it.
  assert isinstance(mixed["image"], mixed_batch.PerBucket) and mixed["text"].shape == (5, 8)
  _, out = model.apply({"params": params}, mixed)
  _, out_small = model.apply({"params": params}, small)
  _, out_large = model.apply({"params": params}, large)
  for key in ("zimg", "ztxt", "caption_logits", "region_emb", "phrase_emb", "object_emb", "object_text_emb"):
    np.testing.assert_allclose(out[key], np.concatenate([out_small[key], out_large[key]]), atol=1e-5, err_msg=key)
