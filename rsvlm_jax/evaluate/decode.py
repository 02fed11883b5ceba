"""Autoregressive caption decoding: greedy and beam search, with or without the decoder KV cache.

All functions are jit-able (static `max_len`, `beam_size`) and take the image tokens of the image
tower; they return int32 token ids [B, max_len] (0 after EOS).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from rsvlm_jax.models import rsvlm


def _forbid_special(logits, bos_id: int):
  """Padding and BOS are never generated (EOS ends a caption)."""
  return logits.at[..., 0].set(-1e9).at[..., bos_id].set(-1e9)


def _init_cache(model, params, image_tokens, max_len):
  b = image_tokens.shape[0]
  _, variables = model.apply({"params": params}, image_tokens, jnp.zeros((b, max_len), jnp.int32), decode=True,
                             method=rsvlm.Model.decode_logits, mutable=["cache"])
  return variables["cache"]


def _step_cached(model, params, cache, image_tokens, last):
  logits, variables = model.apply({"params": params, "cache": cache}, image_tokens, last[:, None], decode=True,
                                  method=rsvlm.Model.decode_logits, mutable=["cache"])
  return _forbid_special(logits[:, 0], model.bos_id), variables["cache"]


def greedy(model, params, image_tokens, max_len: int, *, use_cache: bool = True):
  """Greedy decoding; `use_cache=False` recomputes the whole prefix every step (reference/bench)."""
  b = image_tokens.shape[0]
  bos_id, eos_id = model.bos_id, model.eos_id
  if use_cache:
    def body(carry, _):
      cache, last, done = carry
      logits, cache = _step_cached(model, params, cache, image_tokens, last)
      nxt = jnp.where(done, 0, logits.argmax(-1).astype(jnp.int32))
      return (cache, nxt, done | (nxt == eos_id)), nxt

    init = (_init_cache(model, params, image_tokens, max_len), jnp.full((b,), bos_id, jnp.int32),
            jnp.zeros((b,), bool))
    _, seq = jax.lax.scan(body, init, None, length=max_len)
    return seq.T

  def body(i, carry):
    seq, done = carry
    logits = model.apply({"params": params}, image_tokens, rsvlm.shift_right(seq, bos_id),
                         method=rsvlm.Model.decode_logits)
    nxt = jnp.where(done, 0, _forbid_special(logits[:, i], bos_id).argmax(-1).astype(jnp.int32))
    return seq.at[:, i].set(nxt), done | (nxt == eos_id)

  seq, _ = jax.lax.fori_loop(0, max_len, body, (jnp.zeros((b, max_len), jnp.int32), jnp.zeros((b,), bool)))
  return seq


def beam_search(model, params, image_tokens, max_len: int, beam_size: int = 4, length_penalty: float = 0.6):
  """Beam search with the KV cache; finished hypotheses scored by logprob / ((5+len)/6)^alpha (GNMT)."""
  b = image_tokens.shape[0]
  k = beam_size
  bos_id, eos_id = model.bos_id, model.eos_id
  tok = jnp.repeat(image_tokens, k, axis=0)  # [B*K, N, D]
  cache = _init_cache(model, params, tok, max_len)
  neg = -1e9

  def body(carry, t):
    cache, last, seqs, logp, done = carry  # seqs [B,K,L], logp [B,K], done [B,K]
    logits, cache = _step_cached(model, params, cache, tok, last.reshape(-1))
    lp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(b, k, -1)
    v = lp.shape[-1]
    # A finished beam may only extend with padding (id 0) at no cost.
    pad_row = jnp.full((v,), neg).at[0].set(0.0)
    lp = jnp.where(done[..., None], pad_row, lp)
    cand = logp[..., None] + lp  # [B,K,V]
    cand = jnp.where((t == 0) & (jnp.arange(k) > 0)[None, :, None], neg, cand)  # All beams start equal.
    top, idx = jax.lax.top_k(cand.reshape(b, k * v), k)
    beam, token = idx // v, (idx % v).astype(jnp.int32)
    take = lambda x: jnp.take_along_axis(x, beam.reshape(b, k, *([1] * (x.ndim - 2))), axis=1)
    seqs = take(seqs).at[:, :, t].set(token)
    done = take(done) | (token == eos_id)
    flat_beam = (beam + jnp.arange(b)[:, None] * k).reshape(-1)
    cache = jax.tree.map(lambda c: c[flat_beam] if c.ndim and c.shape[0] == b * k else c, cache)
    return (cache, token.reshape(b, k), seqs, top, done), None

  init = (cache, jnp.full((b, k), bos_id, jnp.int32), jnp.zeros((b, k, max_len), jnp.int32),
          jnp.zeros((b, k)), jnp.zeros((b, k), bool))
  (_, _, seqs, logp, _), _ = jax.lax.scan(body, init, jnp.arange(max_len))
  length = (seqs != 0).sum(-1).astype(jnp.float32)
  score = logp / ((5.0 + length) / 6.0) ** length_penalty
  best = score.argmax(-1)
  return jnp.take_along_axis(seqs, best[:, None, None], axis=1)[:, 0]
