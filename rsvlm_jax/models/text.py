"""Text tower (bidirectional encoder, masked-mean pooled) and caption decoder (causal + cross-attention).

Token id 0 is padding everywhere. The decoder supports single-token steps with a KV cache
(`decode=True`, flax "cache" collection) for fast autoregressive captioning.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rsvlm_jax.models import transformer


class TextEncoder(nn.Module):
  """`__call__(tokens [B,L]) -> (pooled [B,D], {"tokens": [B,L,D], "mask": [B,L]})`.

  Our own towers are bidirectional over the non-padding tokens and mean-pooled; open_clip's text tower is
  `causal=True, pool_type="argmax"`: a causal mask only, pooled at the position of the largest token id
  (the end-of-text token of the CLIP BPE vocabulary).
  """
  vocab_size: int
  width: int = 128
  depth: int = 2
  num_heads: int = 4
  mlp_dim: int = 512
  max_len: int = 32
  dtype: Any = jnp.float32
  remat: bool = False
  causal: bool = False
  pool_type: str = "mean"  # "mean" (over non-padding tokens) or "argmax" (the largest id's position).
  ln_eps: float = 1e-6
  mlp_act: str = "gelu_tanh"

  @nn.compact
  def __call__(self, tokens, *, train: bool = False):
    del train
    if tokens.shape[-1] > self.max_len:
      raise ValueError(f"Text length {tokens.shape[-1]} exceeds text max_len {self.max_len}")
    if self.pool_type not in ("mean", "argmax"):
      raise ValueError(f"Unknown text pool_type {self.pool_type!r}; expected 'mean' or 'argmax'")
    valid = tokens != 0
    x = nn.Embed(self.vocab_size, self.width, name="embedding")(tokens).astype(self.dtype)
    pos = self.param("pos_embedding", nn.initializers.normal(0.02), (1, self.max_len, self.width))
    x = x + pos[:, :tokens.shape[-1]].astype(self.dtype)
    mask = nn.make_causal_mask(tokens) if self.causal else transformer.padding_mask(valid)
    x = transformer.Encoder(self.depth, self.num_heads, self.mlp_dim, dtype=self.dtype, remat=self.remat,
                            ln_eps=self.ln_eps, act=self.mlp_act, name="encoder")(x, mask)
    if self.pool_type == "argmax":
      pooled = jnp.take_along_axis(x, tokens.argmax(axis=-1)[:, None, None], axis=1)[:, 0]
    else:
      w = valid[..., None].astype(x.dtype)
      pooled = (x * w).sum(axis=1) / jnp.maximum(w.sum(axis=1), 1.0)
    return pooled, {"tokens": x, "mask": valid}


class DecoderBlock(nn.Module):
  """Causal self-attention (cached when decoding), cross-attention to image tokens, MLP."""
  num_heads: int
  mlp_dim: int
  dtype: Any = jnp.float32
  decode: bool = False

  @nn.compact
  def __call__(self, x, enc, self_mask, enc_mask):
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype, decode=self.decode,
                                        name="self_attn")(y, y, mask=self_mask)
    x = x + y
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype,
                                        name="cross_attn")(y, enc, mask=enc_mask)
    x = x + y
    y = nn.LayerNorm(dtype=self.dtype)(x)
    return x + transformer.MlpBlock(self.mlp_dim, dtype=self.dtype, name="mlp")(y)


class CaptionDecoder(nn.Module):
  """`__call__(image_tokens [B,N,Dv], inputs [B,L]) -> logits [B,L,V]`.

  With `decode=True`, `inputs` is one token per call ([B,1]) and the KV cache in the "cache"
  collection advances by one position; the first call with the full length creates the cache.
  """
  vocab_size: int
  width: int = 128
  depth: int = 2
  num_heads: int = 4
  mlp_dim: int = 512
  max_len: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, image_tokens, inputs, *, decode: bool = False, image_mask=None):
    enc = nn.Dense(self.width, dtype=self.dtype, name="image_proj")(image_tokens.astype(self.dtype))
    x = nn.Embed(self.vocab_size, self.width, name="embedding")(inputs).astype(self.dtype)
    pos = self.param("pos_embedding", nn.initializers.normal(0.02), (1, self.max_len, self.width))
    length = inputs.shape[-1]
    if decode:
      initialized = self.has_variable("cache", "position")
      index = self.variable("cache", "position", lambda: jnp.zeros((), jnp.int32))
      if initialized:
        x = x + jnp.take(pos[0], index.value, axis=0)[None, None].astype(self.dtype)
        index.value = index.value + 1
      else:
        x = x + pos[:, :length].astype(self.dtype)
      self_mask = None
    else:
      x = x + pos[:, :length].astype(self.dtype)
      valid = inputs != 0
      valid = valid.at[:, 0].set(True)  # BOS position.
      self_mask = nn.combine_masks(nn.make_causal_mask(inputs), nn.make_attention_mask(valid, valid))
    enc_mask = None
    if image_mask is not None:
      enc_mask = nn.make_attention_mask(jnp.ones(inputs.shape, bool), image_mask)
    for i in range(self.depth):
      x = DecoderBlock(self.num_heads, self.mlp_dim, self.dtype, decode, name=f"block{i}")(
          x, enc, self_mask, enc_mask)
    x = nn.LayerNorm(dtype=self.dtype, name="decoder_norm")(x)
    return nn.Dense(self.vocab_size, dtype=jnp.float32, name="logits")(x)
