"""DRIS content complexity: the default, training-free score of how much detail an image holds (numpy).

A grayscale thumbnail -> a complexity map (gradient energy, local entropy, edge density per cell) -> one
score per image (`image_score`). Runs in the data workers; no accelerator needed.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


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
