"""Dynamic-token Vision Transformer: patchifies any grid, one learned posemb resampled per grid.

`ViT` accepts images of any size divisible by the patch size, so every DRIS bucket runs through the same
parameters; the position embedding is a single learned grid (`posemb_grid`) resampled to each bucket's grid.

Images arrive as raw pixel values (uint8 or float in [0, 255]); the tower normalises them with its own
`pixel_mean`/`pixel_std`, so every caller (training, evaluation, `rsvlm_jax.load`) feeds the same thing.
The open_clip layout is a set of options (class token with its own position embedding, `ln_pre`, no
patch-embedding bias, LayerNorm eps 1e-5, exact GELU or QuickGELU, "tok" pooling); the defaults are our
own towers, unchanged.
"""
from __future__ import annotations

from typing import Any

import einops
import flax.linen as nn
import jax.numpy as jnp

from rsvlm_jax.models import posemb as posemb_lib
from rsvlm_jax.models import transformer
from rsvlm_jax import vit_variants

def normalize_pixels(x, mean, std, dtype):
  """Raw pixel values -> (x - mean) / std per channel, computed in float32, cast to `dtype`."""
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return ((x.astype(jnp.float32) - mean) / std).astype(dtype)


class ViT(nn.Module):
  """Image tower. `__call__(image [B,H,W,3]) -> (pooled, out)`.

  out holds "tokens" [B,N,D] (final-LN patch tokens; never the class token), "grid" (h, w) and "pooled"
  [B,D].
  """
  variant: str = vit_variants.DEFAULT
  posemb_grid: tuple[int, int] = (16, 16)
  pool_type: str = "map"  # "map" (attention probe), "gap" (mean of tokens), "tok" (the class token).
  dtype: Any = jnp.float32
  remat: bool = False
  fused_attention: bool = True
  # Explicit sizes (0 = the variant's); e.g. ViT-H-14's 16 heads of width 80.
  width: int = 0
  depth: int = 0
  mlp_dim: int = 0
  num_heads: int = 0
  class_token: bool = False  # A learned class token with its own position embedding, never resampled.
  ln_pre: bool = False  # LayerNorm on the embedded tokens before the blocks (open_clip's ln_pre).
  patch_bias: bool = True  # open_clip's conv1 has no bias.
  ln_eps: float = 1e-6
  mlp_act: str = "gelu_tanh"  # See transformer.ACTIVATIONS.
  pixel_mean: tuple[float, float, float] = (127.5, 127.5, 127.5)  # On the 0-255 scale.
  pixel_std: tuple[float, float, float] = (127.5, 127.5, 127.5)

  @nn.compact
  def __call__(self, image, *, train: bool = False):
    del train
    cfg = vit_variants.decode(self.variant, width=self.width, depth=self.depth, mlp_dim=self.mlp_dim,
                         num_heads=self.num_heads)
    p, width = cfg["patch_size"], cfg["width"]
    if image.shape[1] % p or image.shape[2] % p:
      raise ValueError(f"Image size {image.shape[1:3]} is not divisible by the patch size {p}")
    if self.pool_type == "tok" and not self.class_token:
      raise ValueError("pool_type 'tok' needs class_token=True (config key model.image.class_token)")
    embed = nn.Conv(width, (p, p), strides=(p, p), padding="VALID", use_bias=self.patch_bias, dtype=self.dtype,
                    name="embedding")
    pos = posemb_lib.LearnedPosEmb(grid=tuple(self.posemb_grid), width=width, name="pos_embedding")
    norm = lambda x: normalize_pixels(x, self.pixel_mean, self.pixel_std, self.dtype)

    x = embed(norm(image))
    b, h, w, _ = x.shape
    x = einops.rearrange(x, "b h w d -> b (h w) d") + pos((h, w)).astype(self.dtype)
    parts = [x]
    if self.class_token:
      cls = self.param("cls_token", nn.initializers.zeros, (1, 1, width), jnp.float32)
      cls_pos = self.param("cls_pos_embedding", nn.initializers.normal(stddev=0.02), (1, 1, width), jnp.float32)
      parts.insert(0, jnp.tile((cls + cls_pos).astype(self.dtype), [b, 1, 1]))
    x = jnp.concatenate(parts, axis=1) if len(parts) > 1 else x
    if self.ln_pre:
      x = nn.LayerNorm(epsilon=self.ln_eps, dtype=self.dtype, name="ln_pre")(x)

    x = transformer.Encoder(cfg["depth"], cfg["num_heads"], cfg["mlp_dim"], dtype=self.dtype,
                            remat=self.remat, fused=self.fused_attention, ln_eps=self.ln_eps,
                            act=self.mlp_act, name="encoder")(x)
    cls_out = None
    if self.class_token:
      cls_out, x = x[:, 0], x[:, 1:]
    if self.pool_type == "map":
      pooled = transformer.MapHead(cfg["num_heads"], cfg["mlp_dim"], dtype=self.dtype, name="head")(x)
    elif self.pool_type == "gap":
      pooled = x.mean(axis=1)
    elif self.pool_type == "tok":
      pooled = cls_out
    else:
      raise ValueError(f"Unknown pool_type {self.pool_type!r}; expected 'map', 'gap' or 'tok'")
    out = {"tokens": x, "grid": (h, w), "pooled": pooled}
    return pooled, out
