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


def quick_gelu(x):
  """QuickGELU, x * sigmoid(1.702 x): the activation of OpenAI's CLIP weights."""
  return x * jax.nn.sigmoid(1.702 * x)


# Activations by config name. "gelu_tanh" (flax's default tanh approximation) is what our own models train
# with; "gelu" is the exact erf form (torch nn.GELU, open_clip's non-QuickGELU towers); "quick_gelu" is
# OpenAI CLIP's. Never guessed: a converted checkpoint states which one it was trained with.
ACTIVATIONS = {
    "gelu_tanh": lambda x: nn.gelu(x, approximate=True),
    "gelu": lambda x: nn.gelu(x, approximate=False),
    "quick_gelu": quick_gelu,
}


def activation(name: str):
  """Activation function by config name; clear error on unknown names."""
  if name not in ACTIVATIONS:
    raise ValueError(f"Unknown MLP activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
  return ACTIVATIONS[name]


class MlpBlock(nn.Module):
  """Transformer MLP: Dense -> activation -> Dense."""
  mlp_dim: int
  dtype: Dtype = jnp.float32
  act: str = "gelu_tanh"

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    x = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform())(x)
    x = activation(self.act)(x)
    return nn.Dense(d, dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform())(x)


class EncoderBlock(nn.Module):
  """Pre-LN block: self-attention (optionally masked) then MLP."""
  num_heads: int
  mlp_dim: int
  dtype: Dtype = jnp.float32
  fused: bool = True
  ln_eps: float = 1e-6
  act: str = "gelu_tanh"

  @nn.compact
  def __call__(self, x, mask=None):
    attn_fn = fused_attention if self.fused else nn.dot_product_attention
    y = nn.LayerNorm(epsilon=self.ln_eps, dtype=self.dtype)(x)
    y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype,
                                        attention_fn=attn_fn, name="attn")(y, y, mask=mask)
    x = x + y
    y = nn.LayerNorm(epsilon=self.ln_eps, dtype=self.dtype)(x)
    return x + MlpBlock(self.mlp_dim, dtype=self.dtype, act=self.act, name="mlp")(y)


class Encoder(nn.Module):
  """A stack of `EncoderBlock`s with optional rematerialisation; returns the final-LN output."""
  depth: int
  num_heads: int
  mlp_dim: int
  dtype: Dtype = jnp.float32
  remat: bool = False
  fused: bool = True
  ln_eps: float = 1e-6
  act: str = "gelu_tanh"

  @nn.compact
  def __call__(self, x, mask=None):
    block_cls = nn.remat(EncoderBlock) if self.remat else EncoderBlock
    for i in range(self.depth):
      x = block_cls(self.num_heads, self.mlp_dim, self.dtype, self.fused, self.ln_eps, self.act,
                    name=f"block{i}")(x, mask)
    return nn.LayerNorm(epsilon=self.ln_eps, dtype=self.dtype, name="encoder_norm")(x)


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
