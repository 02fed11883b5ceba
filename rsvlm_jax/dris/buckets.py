"""DRIS buckets: a static, ascending set of square resolutions at one patch size, and bucket statistics."""
from __future__ import annotations

import dataclasses

import numpy as np

from rsvlm_jax import vit_variants


@dataclasses.dataclass(frozen=True)
class BucketSet:
  """Static resolutions (ascending px) at one patch size; one resolution is a fixed-resolution run."""
  resolutions: tuple[int, ...]
  patch_size: int

  def __post_init__(self):
    if not self.resolutions:
      raise ValueError("BucketSet needs at least one resolution (config key dris.resolutions)")
    for r in self.resolutions:
      if r % self.patch_size:
        raise ValueError(f"Resolution {r} is not divisible by the patch size {self.patch_size} "
                         "(config key dris.resolutions; the patch size comes from model.image.variant)")
    if list(self.resolutions) != sorted(set(self.resolutions)):
      raise ValueError(f"Resolutions must be strictly ascending, got {self.resolutions}")

  @property
  def num_buckets(self) -> int:
    return len(self.resolutions)

  @property
  def tokens(self) -> tuple[int, ...]:
    return tuple((r // self.patch_size) ** 2 for r in self.resolutions)

  def grid(self, i: int) -> tuple[int, int]:
    g = self.resolutions[i] // self.patch_size
    return (g, g)



def fractional_resolutions(res: int, patch: int, fractions=(0.5, 0.75, 1.0)) -> tuple[int, ...]:
  """Bucket sizes (px) at about `fractions` of the `res` px patch grid (at least 2 patches a side), ascending."""
  grid = res // patch
  return tuple(sorted({max(2, round(grid * f)) * patch for f in fractions}))


def from_config(config) -> "BucketSet":
  """The buckets of a full config: dris.resolutions at the image tower's patch size."""
  return BucketSet(tuple(int(r) for r in config.dris.resolutions), vit_variants.patch_size(config.model.image))


def choose_bucket(scores, thresholds) -> np.ndarray:
  """Bucket index = number of thresholds <= score (vectorised; non-decreasing in the score)."""
  return np.searchsorted(np.asarray(thresholds, np.float32), np.asarray(scores, np.float32), side="right")


def bucket_histogram(bucket_ids, num_buckets: int) -> list[int]:
  return np.bincount(np.asarray(bucket_ids, np.int64), minlength=num_buckets).tolist()


def mean_tokens(bucket_ids, buckets: BucketSet) -> float:
  ids = np.asarray(bucket_ids, np.int64)
  return float(np.asarray(buckets.tokens, np.float64)[ids].mean()) if ids.size else 0.0
