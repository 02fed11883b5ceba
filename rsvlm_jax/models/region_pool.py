"""Pooling patch tokens into regions: a fixed window partition, or object boxes (static shapes)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def window_pool(tokens: jax.Array, grid: tuple[int, int], windows: int) -> jax.Array:
  """[B, h*w, D] -> [B, windows*windows, D]: mean over a windows x windows partition of the grid.

  Token (i, j) belongs to window (floor(i*windows/h), floor(j*windows/w)), so any grid size works.
  """
  h, w = grid
  rows = (jnp.arange(h) * windows) // h
  cols = (jnp.arange(w) * windows) // w
  assign = (rows[:, None] * windows + cols[None, :]).reshape(-1)  # [h*w]
  onehot = jax.nn.one_hot(assign, windows * windows, dtype=tokens.dtype)  # [h*w, R]
  counts = onehot.sum(0)
  return jnp.einsum("bnd,nr->brd", tokens[:, :h * w], onehot) / jnp.maximum(counts, 1)[None, :, None]


def box_pool(tokens: jax.Array, grid: tuple[int, int], boxes: jax.Array, box_mask: jax.Array) -> jax.Array:
  """Mean of the patch tokens whose centres fall inside each box; [B,h*w,D], [B,O,4] -> [B,O,D].

  A box containing no patch centre (a tiny object) takes the patch that contains its centre.
  Masked-out boxes give zeros.
  """
  h, w = grid
  cy = (jnp.arange(h) + 0.5) / h
  cx = (jnp.arange(w) + 0.5) / w
  yy, xx = jnp.meshgrid(cy, cx, indexing="ij")
  yy, xx = yy.reshape(-1), xx.reshape(-1)  # [h*w]
  ymin, xmin, ymax, xmax = (boxes[..., i:i + 1] for i in range(4))  # [B,O,1]
  inside = (yy >= ymin) & (yy <= ymax) & (xx >= xmin) & (xx <= xmax)  # [B,O,h*w]
  centre_r = jnp.clip(jnp.floor((ymin + ymax) / 2 * h), 0, h - 1)
  centre_c = jnp.clip(jnp.floor((xmin + xmax) / 2 * w), 0, w - 1)
  centre = (jnp.arange(h * w) == (centre_r * w + centre_c).astype(jnp.int32))  # [B,O,h*w]
  weights = jnp.where(inside.any(-1, keepdims=True), inside, centre).astype(tokens.dtype)
  weights = weights * box_mask[..., None].astype(tokens.dtype)
  pooled = jnp.einsum("bon,bnd->bod", weights, tokens[:, :h * w])
  return pooled / jnp.maximum(weights.sum(-1, keepdims=True), 1.0)
