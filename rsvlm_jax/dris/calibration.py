"""Calibrating DRIS score thresholds to a token budget (exponential tilting over the buckets)."""
from __future__ import annotations

import json
import os
from typing import Callable

import numpy as np
from absl import logging

from rsvlm_jax.dris import scorers
from rsvlm_jax.dris.buckets import BucketSet
from rsvlm_jax.dris.scorers import Scorer
from rsvlm_jax.runtime import process_zero
from rsvlm_jax.runtime import progress as progress_lib

_BIG = np.float32(3e38)


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


class Calibration:
  """A run's DRIS scores and thresholds, cached in WORKDIR/dris/ (written by process 0, reused on restart).

  scores_{split}{scorer.cache_tag}.npy  the score of every image of a split (per scorer);
  thresholds.json                       the K-1 thresholds with the budget, scorer and resolutions they meet.

  A workdir's thresholds never change under a run: a thresholds.json made for another budget, scorer or
  resolutions fails, unless `recalibrate_ok` (training did not use the buckets, so no trained step
  depends on them), when it is recalibrated with a warning. `fixed` thresholds (config key dris.thresholds)
  replace calibration. `make_scorer` is called once, on first use: a run that never scores never loads a
  scorer file.
  """

  def __init__(self, workdir: str, buckets: BucketSet, make_scorer: Callable[[], Scorer], budget: float, *,
               fixed=(), recalibrate_ok: bool = False):
    self.dir = os.path.join(workdir, "dris")
    self.buckets, self.budget = buckets, float(budget)
    self._make_scorer, self._scorer = make_scorer, None
    self.fixed = tuple(float(t) for t in fixed)
    self.recalibrate_ok = recalibrate_ok
    self._thresholds = None

  @property
  def scorer(self) -> Scorer:
    if self._scorer is None:
      self._scorer = self._make_scorer()
      logging.info("DRIS scorer: %s", self._scorer.name)
    return self._scorer

  @classmethod
  def from_config(cls, workdir: str, config, buckets: BucketSet, **kwargs) -> "Calibration":
    """The calibration of `workdir` for the config's dris.scorer, score_size, budget and thresholds."""
    cfg = config.dris
    return cls(workdir, buckets, lambda: scorers.make_scorer(cfg.scorer, cfg.score_size), cfg.budget,
               fixed=cfg.thresholds, **kwargs)

  def scores(self, split: str, num_images: int, image: Callable[[int], np.ndarray]) -> np.ndarray:
    """float32 [num_images]: the score of `image(i)` for every i, computed once (with a progress line)."""
    path = os.path.join(self.dir, f"scores_{split}{self.scorer.cache_tag}.npy")
    if os.path.exists(path):
      return np.load(path)

    def compute():
      progress = progress_lib.ItemProgress(num_images, f"DRIS scores ({split}, {self.scorer.name})")
      out = np.zeros((num_images,), np.float32)
      for i in range(num_images):
        out[i] = self.scorer(image(i))
        progress.update(i + 1)
      os.makedirs(self.dir, exist_ok=True)
      np.save(path + ".tmp.npy", out)
      os.replace(path + ".tmp.npy", path)
      return out

    return process_zero.compute_once(compute, lambda: np.load(path), f"dris_scores_{split}")

  def _record(self) -> dict:
    return {"budget": self.budget, "scorer": self.scorer.name, "resolutions": list(self.buckets.resolutions)}

  def thresholds(self, train_scores: Callable[[], np.ndarray]) -> np.ndarray:
    """The K-1 thresholds: fixed, cached in thresholds.json, or calibrated on `train_scores()` and cached."""
    if self._thresholds is None:
      self._thresholds = self._load_or_calibrate(train_scores)
    return self._thresholds

  def saved_thresholds(self) -> np.ndarray:
    """The thresholds without calibrating (read only): fixed, or the workdir's thresholds.json."""
    th = self._fixed_or_saved(recalibrate_ok=False)
    if th is None:
      raise ValueError(f"DRIS needs {self.buckets.num_buckets - 1} calibrated thresholds: "
                       f"{os.path.join(self.dir, 'thresholds.json')} is missing (evaluate the run once with its "
                       "DRIS config, --mode=eval, to calibrate them) or set config key dris.thresholds")
    return th

  def _fixed_or_saved(self, recalibrate_ok: bool) -> np.ndarray | None:
    """Fixed or cached thresholds; None when they must be calibrated (none saved, or stale and allowed)."""
    if self.buckets.num_buckets == 1:
      return np.zeros((0,), np.float32)
    if self.fixed:
      if len(self.fixed) != self.buckets.num_buckets - 1:
        raise ValueError(f"Config key dris.thresholds holds {len(self.fixed)} values; {self.buckets.num_buckets} "
                         "buckets need one fewer")
      return np.asarray(self.fixed, np.float32)
    path = os.path.join(self.dir, "thresholds.json")
    if not os.path.exists(path):
      return None
    record = self._record()
    with open(path) as f:
      saved = json.load(f)
    stale = [k for k, v in record.items() if saved.get(k, "complexity" if k == "scorer" else None) != v]
    if not stale:
      return np.asarray(saved["thresholds"], np.float32)
    key = stale[0]
    if not recalibrate_ok:
      raise ValueError(f"{path} was calibrated with {key}={saved.get(key)!r} but the config has {record[key]!r} "
                       f"(config key dris.{key}); use a new workdir, or delete {self.dir} to recalibrate")
    logging.warning("DRIS (dris.train=largest): %s was calibrated with %s=%r; recalibrating for %r", path, key,
                    saved.get(key), record[key])
    return None

  def _load_or_calibrate(self, train_scores) -> np.ndarray:
    th = self._fixed_or_saved(self.recalibrate_ok)
    if th is not None:
      return th
    path = os.path.join(self.dir, "thresholds.json")
    record = self._record()
    scores = train_scores()

    def compute():
      th = calibrate_thresholds(scores, self.buckets, self.budget)
      os.makedirs(self.dir, exist_ok=True)
      with open(path + ".tmp", "w") as f:
        json.dump({"thresholds": th.tolist(), **record}, f)
      os.replace(path + ".tmp", path)
      return th

    def load():
      with open(path) as f:
        return np.asarray(json.load(f)["thresholds"], np.float32)

    return process_zero.compute_once(compute, load, "dris_thresholds")
