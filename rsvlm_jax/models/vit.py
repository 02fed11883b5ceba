"""Dynamic-token Vision Transformer: patchifies any grid, one learned posemb resampled per grid.

`ViT` accepts images of any size divisible by the patch size, so every DRIS bucket (and every
coarse-to-fine tile) runs through the same parameters; the position embedding is a single learned
grid (`posemb_grid`) resampled to each bucket's grid, or cropped to a tile's box.
"""
from __future__ import annotations

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsvlm_jax.models import posemb as posemb_lib
from rsvlm_jax.models import transformer

# name -> (width, depth, mlp_dim, num_heads)
VARIANTS = {
    "pico": (64, 2, 128, 2),  # Smoke tests.
    "mu": (128, 4, 512, 4),   # CPU demo size.
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
}


def decode_variant(variant: str) -> dict[str, int]:
  """"S/16" -> dict(width, depth, mlp_dim, num_heads, patch_size); clear error on unknown names."""
  m = re.fullmatch(r"([A-Za-z0-9]+)/(\d+)", variant or "")
  if not m or m.group(1) not in VARIANTS:
    raise ValueError(f"Unknown ViT variant {variant!r}; expected NAME/PATCH with NAME in {sorted(VARIANTS)}")
  width, depth, mlp_dim, heads = VARIANTS[m.group(1)]
  return dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=heads, patch_size=int(m.group(2)))


class ViT(nn.Module):
  """Image tower. `__call__(image [B,H,W,3], tiles=None, tile_boxes=None) -> (pooled, out)`.

  out holds "tokens" [B,N,D] (final-LN patch tokens, global view first then tiles), "grid" (h, w) of
  the global view, "num_tiles", and "pooled" [B,D].
  """
  variant: str = "mu/8"
  posemb_grid: tuple[int, int] = (16, 16)
  pool_type: str = "map"
  dtype: Any = jnp.float32
  remat: bool = False
  fused_attention: bool = True

  @nn.compact
  def __call__(self, image, tiles=None, tile_boxes=None, *, train: bool = False):
    del train
    cfg = decode_variant(self.variant)
    p, width = cfg["patch_size"], cfg["width"]
    if image.shape[1] % p or image.shape[2] % p:
      raise ValueError(f"Image size {image.shape[1:3]} is not divisible by the patch size {p}")
    embed = nn.Conv(width, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype, name="embedding")
    pos = posemb_lib.LearnedPosEmb(grid=tuple(self.posemb_grid), width=width, name="pos_embedding")

    x = embed(image.astype(self.dtype))
    b, h, w, _ = x.shape
    x = x.reshape(b, h * w, width) + pos((h, w)).astype(self.dtype)
    parts = [x]
    num_tiles = 0
    if tiles is not None:
      # tiles: [B, K, t, t, 3]; tile_boxes: [B, K, 4] normalized boxes of each tile in the image.
      num_tiles = tiles.shape[1]
      t = embed(tiles.reshape((-1,) + tiles.shape[2:]).astype(self.dtype))
      th, tw = t.shape[1:3]
      t = t.reshape(b, num_tiles, th * tw, width)
      tile_pos = jax.vmap(jax.vmap(lambda box: pos((th, tw), box=box)[0]))(tile_boxes)
      t = t + tile_pos.astype(self.dtype)
      parts.append(t.reshape(b, num_tiles * th * tw, width))
    x = jnp.concatenate(parts, axis=1) if len(parts) > 1 else x

    x = transformer.Encoder(cfg["depth"], cfg["num_heads"], cfg["mlp_dim"], dtype=self.dtype,
                            remat=self.remat, fused=self.fused_attention, name="encoder")(x)
    if self.pool_type == "map":
      pooled = transformer.MapHead(cfg["num_heads"], cfg["mlp_dim"], dtype=self.dtype, name="head")(x)
    elif self.pool_type == "gap":
      pooled = x.mean(axis=1)
    else:
      raise ValueError(f"Unknown pool_type {self.pool_type!r}; expected 'map' or 'gap'")
    out = {"tokens": x, "grid": (h, w), "num_tiles": num_tiles, "pooled": pooled}
    return pooled, out
