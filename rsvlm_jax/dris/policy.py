"""Which DRIS bucket an image is encoded at, in training and at serving (evaluation and `rsvlm_jax.load`).

Each phase either uses the calibrated buckets ("buckets": the image's score against the thresholds) or puts
every image at the largest bucket ("largest"). config.dris.train / config.dris.serve choose:

  train=buckets, serve=buckets   DRIS in training and at serving.
  train=largest, serve=buckets   train with every token, serve with fewer where the scorer says they matter
                                 (a fixed run at the largest bucket, step for step, served with DRIS).
  serve=largest                  the same weights evaluated at full resolution (e.g. the reference row).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from rsvlm_jax.dris import buckets as buckets_lib

ASSIGNMENTS = ("buckets", "largest")
PHASES = ("train", "serve")


@dataclasses.dataclass(frozen=True)
class BucketPolicy:
  buckets: buckets_lib.BucketSet
  train: str = "buckets"
  serve: str = "buckets"

  def __post_init__(self):  # The config gate checks dris.train / dris.serve (choices: ASSIGNMENTS).
    assert self.train in ASSIGNMENTS and self.serve in ASSIGNMENTS, (self.train, self.serve)

  def uses_buckets(self, phase: str) -> bool:
    """True when `phase` assigns images by score (more than one bucket and dris.<phase>=buckets)."""
    return self.buckets.num_buckets > 1 and getattr(self, phase) == "buckets"

  def assign(self, phase: str, num_images: int, scores: Callable[[], np.ndarray],
             thresholds: Callable[[], np.ndarray]) -> np.ndarray:
    """int32 [num_images] bucket ids for `phase`; `scores` and `thresholds` are only called when needed."""
    if phase not in PHASES:
      raise ValueError(f"Unknown phase {phase!r}; expected one of {PHASES}")
    if not self.uses_buckets(phase):
      return np.full((num_images,), self.buckets.num_buckets - 1, np.int32)
    return buckets_lib.choose_bucket(scores(), thresholds()).astype(np.int32)
