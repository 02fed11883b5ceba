"""Transformer building blocks shared by the image tower, text encoder and caption decoder."""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


def fused_attention(query, key, value, bias=None, mask=None, **kwargs):
  """`flax` attention_fn backed by `jax.nn.dot_product_attention` (fused where XLA can)."""
  del kwargs  # dropout/precision/etc are not used by the fused path (no attention dropout).
  if bias is not None:
    raise NotImplementedError("attention bias is not used in rsvlm_jax")
  return jax.nn.dot_product_attention(query, key, value, mask=None if mask is None else mask.astype(bool))


class MlpBlock(nn.Module):
  """Transformer MLP: Dense -> GELU -> Dense."""
  mlp_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    x = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform())(x)
    x = nn.gelu(x)
    return nn.Dense(d, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform())(x)


class EncoderBlock(nn.Module):
  """Pre-LN block: self-attention (optionally masked) then MLP."""
  num_heads: int
  mlp_dim: int
  dtype: Dtype = jnp.float32
  fused: bool = True

  @nn.compact
  def __call__(self, x, mask=None):
    attn_fn = fused_attention if self.fused else nn.dot_product_attention
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype,
                                        attention_fn=attn_fn, name="attn")(y, y, mask=mask)
    x = x + y
    y = nn.LayerNorm(dtype=self.dtype)(x)
    return x + MlpBlock(self.mlp_dim, dtype=self.dtype, name="mlp")(y)


class Encoder(nn.Module):
  """A stack of `EncoderBlock`s with optional rematerialisation; returns the final-LN output."""
  depth: int
  num_heads: int
  mlp_dim: int
  dtype: Dtype = jnp.float32
  remat: bool = False
  fused: bool = True

  @nn.compact
  def __call__(self, x, mask=None):
    block_cls = nn.remat(EncoderBlock) if self.remat else EncoderBlock
    for i in range(self.depth):
      x = block_cls(self.num_heads, self.mlp_dim, self.dtype, self.fused, name=f"block{i}")(x, mask)
    return nn.LayerNorm(dtype=self.dtype, name="encoder_norm")(x)


class MapHead(nn.Module):
  """Multihead attention pooling with one learned probe."""
  num_heads: int
  mlp_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, mask=None):
    probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, x.shape[-1]), jnp.float32)
    probe = jnp.tile(probe, [x.shape[0], 1, 1]).astype(x.dtype)
    if mask is not None:
      mask = mask[:, None, None, :]
    x = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype)(probe, x, mask=mask)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    x = x + MlpBlock(self.mlp_dim, dtype=self.dtype)(y)
    return x[:, 0]


def padding_mask(valid: jax.Array) -> jax.Array:
  """[B, L] bool validity -> [B, 1, L, L] attention mask (queries x keys)."""
  return nn.make_attention_mask(valid, valid)


ActivationFn = Callable[[jax.Array], jax.Array]
