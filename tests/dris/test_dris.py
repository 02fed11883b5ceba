"""DRIS: scores, bucket choice, budget calibration."""
from __future__ import annotations

import numpy as np
import pytest

from rsvlm_jax.dris import buckets as buckets_lib
from rsvlm_jax.dris import calibration
from rsvlm_jax.dris import complexity


def _flat_image(value=90, size=128):
  return np.full((size, size, 3), value, np.uint8)


def _busy_image(seed=0, size=128):
  rng = np.random.default_rng(seed)
  img = np.full((size, size, 3), 100, np.uint8)
  for _ in range(120):  # many small high-contrast rectangles: a dense scene.
    y, x = rng.integers(0, size - 6, 2)
    img[y:y + 4, x:x + 5] = rng.integers(0, 255, 3)
  return img


def test_flat_scene_scores_below_dense_scene():
  flat, flat_map = complexity.score_image(_flat_image())
  busy, busy_map = complexity.score_image(_busy_image())
  assert flat_map.shape == busy_map.shape == (8, 8)
  assert 0.0 <= flat < 0.05 < busy <= 1.0


def test_complexity_map_localises_detail():
  img = _flat_image()
  img[:64, :64] = _busy_image(size=64)  # detail only in the top-left quadrant.
  _, cmap = complexity.score_image(img)
  assert cmap[:4, :4].mean() > 5 * cmap[4:, 4:].mean()


def test_bucket_choice_is_monotone_in_the_score():
  rng = np.random.default_rng(0)
  scores = np.sort(rng.random(1000))
  buckets = buckets_lib.BucketSet((64, 96, 128, 160), 16)
  thresholds = calibration.calibrate_thresholds(rng.random(500), buckets, 0.5)
  assert np.all(np.diff(thresholds) >= 0)
  ids = buckets_lib.choose_bucket(scores, thresholds)
  assert np.all(np.diff(ids) >= 0)
  assert ids.min() == 0 and ids.max() == 3


@pytest.mark.parametrize("budget", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("dist", ["uniform", "beta", "bimodal"])
def test_calibration_meets_the_budget_within_5_percent_on_a_sample(budget, dist):
  rng = np.random.default_rng(1)
  draw = {"uniform": lambda n: rng.random(n),
          "beta": lambda n: rng.beta(2, 5, n),
          "bimodal": lambda n: np.concatenate([rng.normal(0.1, 0.02, n // 2), rng.normal(0.4, 0.05, n - n // 2)])}
  buckets = buckets_lib.BucketSet((224, 336, 448, 672), 16)
  thresholds = calibration.calibrate_thresholds(draw[dist](2000), buckets, budget)  # calibrate on a sample,
  held_out = draw[dist](5000)                                                 # measure on fresh data.
  achieved = buckets_lib.mean_tokens(buckets_lib.choose_bucket(held_out, thresholds), buckets) / buckets.tokens[-1]
  assert abs(achieved - budget) <= 0.05 * budget, achieved


def test_calibration_edge_budgets():
  buckets = buckets_lib.BucketSet((32, 64), 16)
  scores = np.linspace(0, 1, 11)
  assert np.all(buckets_lib.choose_bucket(scores, calibration.calibrate_thresholds(scores, buckets, 1.0)) == 1)
  assert np.all(buckets_lib.choose_bucket(scores, calibration.calibrate_thresholds(scores, buckets, 0.1)) == 0)
  single = buckets_lib.BucketSet((64,), 16)  # the fixed-resolution baseline is one bucket.
  assert np.all(buckets_lib.choose_bucket(scores, calibration.calibrate_thresholds(scores, single, 0.5)) == 0)


def test_bucket_set_rejects_bad_config():
  with pytest.raises(ValueError, match="dris.resolutions"):
    buckets_lib.BucketSet((), 16)
  with pytest.raises(ValueError, match="not divisible"):
    buckets_lib.BucketSet((100,), 16)
  with pytest.raises(ValueError, match="ascending"):
    buckets_lib.BucketSet((64, 32), 16)


def test_histogram_and_mean_tokens():
  buckets = buckets_lib.BucketSet((32, 64), 16)
  assert buckets_lib.bucket_histogram([0, 1, 1, 1], 2) == [1, 3]
  assert buckets_lib.mean_tokens([0, 1, 1, 1], buckets) == pytest.approx((4 + 3 * 16) / 4)


@pytest.mark.parametrize("n,num_groups", [(300, 3), (301, 3), (10, 2), (7, 4)])
def test_complexity_groups_are_equal_count_and_monotone(n, num_groups):
  scores = np.random.default_rng(n).random(n)
  ids, names = complexity.complexity_groups(scores, num_groups)
  assert len(names) == num_groups
  counts = np.bincount(ids, minlength=num_groups)
  assert counts.max() - counts.min() <= 1 and counts.sum() == n
  order = np.argsort(scores)
  assert np.all(np.diff(ids[order]) >= 0)  # A higher score never lands in a simpler group.
  assert complexity.complexity_groups(scores, 3)[1] == ("simple", "medium", "dense")
  with pytest.raises(ValueError, match="complexity_groups"):
    complexity.complexity_groups(scores, 0)
