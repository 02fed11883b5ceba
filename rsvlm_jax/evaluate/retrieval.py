"""Image-text retrieval recall (R@K) from a similarity matrix, in numpy, without sorting it.

Image -> text (i2t): each image is a query over all texts; it is a hit at K if ANY of its captions is
ranked within the top K. Text -> image (t2i): each caption is a query over all images; it is a hit at K
if its own image is within the top K. The 0-based rank of a query's best ground truth (gt) item with
score s is
  optimistic:  #{items with score > s}
  pessimistic: #{items with score > s} + #{non-gt items with score == s}   (the default)
i.e. a gt item tied with other candidates is placed before (optimistic) or after (pessimistic) all of
them; ties among an image's own captions never count against it (only the best one matters). Hit at
K <=> rank < K. NaN scores of non-gt items never outrank anything; a NaN gt score is an error.

The matrix is processed in row chunks, counting scores above (or tied with) each query's gt score, so
memory stays at O(chunk_size * num_texts) on top of `sim` (which may be a np.memmap).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

TIES = ("pessimistic", "optimistic")


def ranks(sim: np.ndarray, text_to_image: np.ndarray, *, ties: str = "pessimistic",
          chunk_size: int | None = 1024) -> tuple[np.ndarray, np.ndarray]:
  """0-based ranks of the best gt item: ([num_images] for i2t, [num_texts] for t2i).

  Args:
    sim: [num_images, num_texts] similarity (higher = more similar).
    text_to_image: [num_texts] index of the image each text describes; every image needs >= 1 text.
    ties: "pessimistic" or "optimistic" (see the module docstring).
    chunk_size: image rows per chunk; None processes the whole matrix at once.
  """
  sim = sim if isinstance(sim, np.ndarray) else np.asarray(sim)   # keeps np.memmap as is
  owner = np.asarray(text_to_image)
  if sim.ndim != 2:
    raise ValueError(f"sim must be [num_images, num_texts], got shape {sim.shape}")
  num_images, num_texts = sim.shape
  if owner.shape != (num_texts,) or not np.issubdtype(owner.dtype, np.integer):
    raise ValueError(f"text_to_image must be {num_texts} integer image indices, got {owner.dtype} {owner.shape}")
  if num_texts and (owner.min() < 0 or owner.max() >= num_images):
    raise ValueError(f"text_to_image values must be in [0, {num_images})")
  texts_per_image = np.bincount(owner, minlength=num_images)
  if (texts_per_image == 0).any():
    raise ValueError(f"image {int(np.argmin(texts_per_image))} has no text in text_to_image")
  if ties not in TIES:
    raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
  if chunk_size is not None and chunk_size < 1:
    raise ValueError(f"chunk_size must be positive or None, got {chunk_size}")

  gt = sim[owner, np.arange(num_texts)]                  # score of each text with its own image
  if np.isnan(gt).any():
    raise ValueError("sim has NaN ground-truth scores")
  best = np.empty(num_images, gt.dtype)                  # best score among each image's own texts
  best[owner] = gt                                       # some own score, then the maximum of them
  np.maximum.at(best, owner, gt)
  num_best = np.bincount(owner, weights=gt == best[owner], minlength=num_images).astype(np.int64)

  pessimistic = ties == "pessimistic"
  above = np.greater_equal if pessimistic else np.greater
  i2t = np.empty(num_images, np.int64)
  t2i = np.zeros(num_texts, np.int64)
  step = chunk_size or max(num_images, 1)
  for start in range(0, num_images, step):
    rows = sim[start:start + step]
    i2t[start:start + len(rows)] = above(rows, best[start:start + step, None]).sum(1)
    t2i += above(rows, gt[None, :]).sum(0)
  if pessimistic:   # ">=" also counted the tied gt items themselves
    i2t -= num_best
    t2i -= 1
  return i2t, t2i


def retrieval_metrics(sim: np.ndarray, text_to_image: np.ndarray, ks: Sequence[int] = (1, 5, 10), *,
                      ties: str = "pessimistic", chunk_size: int | None = 1024) -> dict[str, float]:
  """Recall@K in percent for both directions and their mean.

  Args:
    sim: [num_images, num_texts] similarity (higher = more similar); numpy or anything np.asarray takes.
    text_to_image: [num_texts] image index of each text (several captions per image allowed).
    ks: the K values.
    ties: "pessimistic" (default: a gt item tied with other candidates ranks after them) or
      "optimistic" (before them); see the module docstring for the exact rank definition.
    chunk_size: image rows processed at a time (memory ~ chunk_size * num_texts bytes); None = all.

  Returns:
    {"i2t_R@K", "t2i_R@K" for K in ks, "mR": mean of those} in percent.
  """
  if not ks or any(int(k) != k or k < 1 for k in ks):
    raise ValueError(f"ks must be positive integers, got {ks!r}")
  i2t, t2i = ranks(sim, text_to_image, ties=ties, chunk_size=chunk_size)
  return recalls(i2t, t2i, ks)


def recalls(i2t_ranks: np.ndarray, t2i_ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
  """R@K in percent and mR from the ranks of `ranks` (pass a subset of queries for a per-group breakdown)."""
  out = {}
  for name, r in (("i2t", i2t_ranks), ("t2i", t2i_ranks)):
    for k in ks:
      out[f"{name}_R@{int(k)}"] = 100.0 * float(np.mean(np.asarray(r) < k)) if len(r) else float("nan")
  out["mR"] = float(np.mean(list(out.values())))
  return out
