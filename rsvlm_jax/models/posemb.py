"""Learned position embeddings on one grid, resampled to any bucket grid or cropped to a tile's box."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def resample_posemb(posemb: jax.Array, new_grid: tuple[int, int]) -> jax.Array:
  """[1, gh, gw, D] -> [1, nh, nw, D] (bilinear, antialiased when shrinking); identity for its own grid."""
  if tuple(posemb.shape[1:3]) == tuple(new_grid):
    return posemb
  return jax.image.resize(posemb, (1, *new_grid, posemb.shape[-1]), method="bilinear", antialias=True)


def crop_posemb(posemb: jax.Array, box: jax.Array, out_grid: tuple[int, int]) -> jax.Array:
  """Position embedding of the region `box` = [ymin, xmin, ymax, xmax] (normalized) at `out_grid`.

  Samples the learned grid bilinearly at the centres of the out_grid cells inside the box, so a tile
  knows where it sits in the image; box [0, 0, 1, 1] reproduces `resample_posemb` (up to antialiasing).
  """
  gh, gw = posemb.shape[1:3]
  oh, ow = out_grid
  ymin, xmin, ymax, xmax = box[0], box[1], box[2], box[3]
  # Cell centres in normalized image coordinates -> continuous grid coordinates (cell-centre aligned).
  ys = ymin + (jnp.arange(oh) + 0.5) / oh * (ymax - ymin)
  xs = xmin + (jnp.arange(ow) + 0.5) / ow * (xmax - xmin)
  gy = ys * gh - 0.5
  gx = xs * gw - 0.5
  yy, xx = jnp.meshgrid(gy, gx, indexing="ij")
  grid = posemb[0]
  sample = lambda ch: jax.scipy.ndimage.map_coordinates(ch, [yy, xx], order=1, mode="nearest")
  out = jax.vmap(sample, in_axes=-1, out_axes=-1)(grid)
  return out[None]


class LearnedPosEmb(nn.Module):
  """One learned [gh, gw, D] grid; `__call__(out_grid, box=None) -> [1, oh*ow, D]`."""
  grid: tuple[int, int]
  width: int

  @nn.compact
  def __call__(self, out_grid: tuple[int, int], box=None):
    pe = self.param("pos_embedding", nn.initializers.normal(stddev=0.02), (1, *self.grid, self.width))
    pe = resample_posemb(pe, tuple(out_grid)) if box is None else crop_posemb(pe, box, tuple(out_grid))
    return pe.reshape(1, out_grid[0] * out_grid[1], self.width)
