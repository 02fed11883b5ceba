"""DRIS: dynamic resolution input strategy (numpy; runs in the data workers).

1. Coarse pass: a grayscale thumbnail -> a complexity map (gradient energy, local entropy, edge density per
   cell) -> one score per image.
2. Buckets: a static, ascending set of resolutions; thresholds on the score, calibrated on training
   scores to meet a token budget, map each image to a bucket (monotone in the score). One bucket is the
   fixed-resolution baseline.
3. Coarse-to-fine: the K tiles of a tile_grid x tile_grid split with the highest summed complexity,
   cropped from the full-resolution image, with their boxes (for position embeddings).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from absl import logging
from PIL import Image

_BIG = np.float32(3e38)


def thumbnail(image: np.ndarray, size: int = 64) -> np.ndarray:
  """uint8 [H,W,3] (any size) -> float32 grayscale [size,size] in [0,1] (box filter)."""
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"Expected an [H,W,3] image, got shape {image.shape}")
  gray = Image.fromarray(np.asarray(image, np.uint8)).convert("L").resize((size, size), Image.BOX)
  return np.asarray(gray, np.float32) / 255.0


def _cells(x: np.ndarray, cell: int) -> np.ndarray:
  h, w = x.shape
  return x[:h - h % cell, :w - w % cell].reshape(h // cell, cell, w // cell, cell).swapaxes(1, 2)


def complexity_map(thumb: np.ndarray, cell: int = 8, *, w_gradient: float = 0.4, w_entropy: float = 0.3,
                   w_edges: float = 0.3, edge_threshold: float = 0.08, bins: int = 16) -> np.ndarray:
  """float32 [size/cell, size/cell] in [0,1]: weighted gradient energy, intensity entropy, edge density."""
  gy, gx = np.gradient(thumb.astype(np.float32))
  mag = np.sqrt(gx * gx + gy * gy)
  grad = np.clip(_cells(mag, cell).mean(axis=(2, 3)) / 0.15, 0.0, 1.0)
  edges = (_cells(mag, cell) > edge_threshold).mean(axis=(2, 3))
  q = np.minimum((thumb * bins).astype(np.int32), bins - 1)
  qc = _cells(q, cell).reshape(grad.shape + (-1,))
  hist = np.stack([(qc == b).mean(-1) for b in range(bins)], -1)
  ent = -(hist * np.log(np.where(hist > 0, hist, 1.0))).sum(-1) / np.log(bins)
  return (w_gradient * grad + w_entropy * ent + w_edges * edges).astype(np.float32)


def complexity_score(cmap: np.ndarray) -> float:
  """Mean complexity plus its 90th percentile, halved: a few dense cells count."""
  return float(0.5 * cmap.mean() + 0.5 * np.quantile(cmap, 0.9))


def score_image(image: np.ndarray, size: int = 64) -> tuple[float, np.ndarray]:
  """(score, complexity map) of one image."""
  cmap = complexity_map(thumbnail(image, size))
  return complexity_score(cmap), cmap


def image_score(image: np.ndarray, size: int = 64) -> float:
  """The content-complexity score of one image (the default DRIS score)."""
  return score_image(image, size)[0]


@dataclasses.dataclass(frozen=True)
class BucketSet:
  """Static resolutions (ascending px) at one patch size."""
  resolutions: tuple[int, ...]
  patch_size: int

  def __post_init__(self):
    if not self.resolutions:
      raise ValueError("BucketSet needs at least one resolution (config key input.resolutions)")
    for r in self.resolutions:
      if r % self.patch_size:
        raise ValueError(f"Resolution {r} is not divisible by the patch size {self.patch_size} "
                         "(config keys input.resolutions / input.patch_size)")
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


def _shares(lam: float, k: int) -> np.ndarray:
  logits = lam * np.arange(k, dtype=np.float64)
  e = np.exp(logits - logits.max())
  return e / e.sum()


def calibrate_thresholds(scores: np.ndarray, buckets: BucketSet, budget: float) -> np.ndarray:
  """K-1 ascending score thresholds so that the mean tokens per image is about budget x the largest bucket.

  Rule (exponential tilting): bucket k receives the share f_k proportional to exp(lambda * k) of the
  images, lowest scores in the smallest bucket. lambda = 0 spreads images evenly, lambda -> -inf puts
  all in the smallest and +inf all in the largest bucket; the mean tokens sum_k f_k t_k increases
  monotonically with lambda, so bisection finds the lambda that meets the budget, and the thresholds
  are the score quantiles at the cumulative shares. Assignment is monotone in the score by construction.
  """
  scores = np.asarray(scores, np.float64)
  k = buckets.num_buckets
  tokens = np.asarray(buckets.tokens, np.float64)
  if k == 1:
    return np.zeros((0,), np.float32)
  target = budget * tokens[-1]
  if target >= tokens[-1]:
    return np.full((k - 1,), -_BIG, np.float32)
  if target <= tokens[0]:
    logging.warning("DRIS budget %.3f is at or below the smallest bucket's share (%.3f): every image goes to "
                    "the smallest bucket", budget, tokens[0] / tokens[-1])
    return np.full((k - 1,), _BIG, np.float32)
  lo, hi = -50.0, 50.0
  for _ in range(200):
    mid = 0.5 * (lo + hi)
    if _shares(mid, k) @ tokens > target:
      hi = mid
    else:
      lo = mid
  cum = np.cumsum(_shares(lo, k))[:-1]
  return np.quantile(scores, np.clip(cum, 0.0, 1.0)).astype(np.float32)


def choose_bucket(scores, thresholds) -> np.ndarray:
  """Bucket index = number of thresholds <= score (vectorised; non-decreasing in the score)."""
  return np.searchsorted(np.asarray(thresholds, np.float32), np.asarray(scores, np.float32), side="right")


def bucket_histogram(bucket_ids, num_buckets: int) -> list[int]:
  return np.bincount(np.asarray(bucket_ids, np.int64), minlength=num_buckets).tolist()


def mean_tokens(bucket_ids, buckets: BucketSet) -> float:
  ids = np.asarray(bucket_ids, np.int64)
  return float(np.asarray(buckets.tokens, np.float64)[ids].mean()) if ids.size else 0.0


def complexity_groups(scores, num_groups: int = 3) -> tuple[np.ndarray, tuple[str, ...]]:
  """Splits a split's images into equal-count groups by complexity score rank, for per-group metrics.

  Returns (group id per image, in [0, num_groups), non-decreasing in the score; ties broken by index)
  and the group names: ("simple", "dense") for 2, ("simple", "medium", "dense") for 3, else "g0", "g1", ...
  The groups depend only on the images, not on a run's buckets, so fixed and DRIS runs compare like for like.
  """
  if num_groups < 1:
    raise ValueError(f"num_groups must be positive, got {num_groups} (config key evals.*.complexity_groups)")
  scores = np.asarray(scores, np.float64)
  rank = np.empty(len(scores), np.int64)
  rank[np.argsort(scores, kind="stable")] = np.arange(len(scores))
  ids = (rank * num_groups) // max(len(scores), 1)
  names = {2: ("simple", "dense"), 3: ("simple", "medium", "dense")}.get(
      num_groups, tuple(f"g{i}" for i in range(num_groups)))
  return ids.astype(np.int32), names


# -- coarse to fine ---------------------------------------------------------------------------------
def select_tiles(cmap: np.ndarray, tile_grid: int, num_tiles: int) -> np.ndarray:
  """(row, col) [num_tiles, 2] of the tiles with the highest summed complexity (ties: row-major order)."""
  if num_tiles > tile_grid * tile_grid:
    raise ValueError(f"num_tiles {num_tiles} exceeds the {tile_grid}x{tile_grid} tile grid")
  h, w = cmap.shape
  rows = (np.arange(h) * tile_grid) // h
  cols = (np.arange(w) * tile_grid) // w
  sums = np.zeros((tile_grid, tile_grid), np.float64)
  np.add.at(sums, (rows[:, None], cols[None, :]), cmap)
  order = np.argsort(-sums.reshape(-1), kind="stable")[:num_tiles]
  return np.stack([order // tile_grid, order % tile_grid], -1).astype(np.int32)


def tile_boxes(tiles: np.ndarray, tile_grid: int) -> np.ndarray:
  """Normalized [ymin, xmin, ymax, xmax] of each tile."""
  t = np.asarray(tiles, np.float32)
  return np.concatenate([t / tile_grid, (t + 1) / tile_grid], -1)


def crop_tiles(image: np.ndarray, tiles: np.ndarray, tile_grid: int, out_size: int) -> np.ndarray:
  """uint8 [num_tiles, out_size, out_size, 3] crops of the full-resolution image."""
  h, w = image.shape[:2]
  out = []
  for r, c in np.asarray(tiles):
    y0, y1 = int(r * h // tile_grid), int((r + 1) * h // tile_grid)
    x0, x1 = int(c * w // tile_grid), int((c + 1) * w // tile_grid)
    crop = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
    out.append(np.asarray(crop.resize((out_size, out_size), Image.BILINEAR)))
  return np.stack(out).astype(np.uint8)
