"""The DRIS score of an image, behind one interface: content complexity (no training) or a learned scorer.

A scorer is a callable `image uint8 [H, W, 3] -> float` (higher = more resolution helps) with a `name` (for
logs and records) and a `cache_tag` ("" or "-<digest>"), so that cached scores of one scorer are never read
as another's. `make_scorer(config.dris.scorer, config.dris.score_size)` picks one from the config.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from rsvlm_jax.dris import complexity
from rsvlm_jax.dris import learned


class Scorer(Protocol):
  name: str
  cache_tag: str

  def __call__(self, image: np.ndarray) -> float:
    ...


@dataclasses.dataclass(frozen=True)
class ComplexityScorer:
  """The content-complexity score (complexity.image_score) on a `size` px thumbnail."""
  size: int = 64
  name: str = "complexity"
  cache_tag: str = ""

  def __call__(self, image: np.ndarray) -> float:
    return complexity.image_score(image, self.size)


def make_scorer(path: str = "", score_size: int = 64) -> Scorer:
  """The learned scorer saved at `path` (config key dris.scorer), or the complexity score when it is empty."""
  if path:
    return learned.load(path)
  return ComplexityScorer(int(score_size))
