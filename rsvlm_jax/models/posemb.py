"""Learned position embeddings on one grid, resampled to any bucket grid."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def resample_posemb(posemb: jax.Array, new_grid: tuple[int, int]) -> jax.Array:
  """[1, gh, gw, D] -> [1, nh, nw, D] (bilinear, antialiased when shrinking); identity for its own grid."""
  if tuple(posemb.shape[1:3]) == tuple(new_grid):
    return posemb
  return jax.image.resize(posemb, (1, *new_grid, posemb.shape[-1]), method="bilinear", antialias=True)


class LearnedPosEmb(nn.Module):
  """One learned [gh, gw, D] grid; `__call__(out_grid) -> [1, oh*ow, D]`."""
  grid: tuple[int, int]
  width: int

  @nn.compact
  def __call__(self, out_grid: tuple[int, int]):
    pe = self.param("pos_embedding", nn.initializers.normal(stddev=0.02), (1, *self.grid, self.width))
    pe = resample_posemb(pe, tuple(out_grid))
    return pe.reshape(1, out_grid[0] * out_grid[1], self.width)
