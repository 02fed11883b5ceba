"""bench/common.py: the matmul peak is the best over its shapes; per-step spread statistics."""
import numpy as np
import pytest

from bench import common


def test_peak_is_the_best_shape_and_spread_is_exact():
  peak = common.matmul_peak(shapes=((64, 64, 64), (32, 64, 16)), min_time=0.01)
  assert set(peak["by_shape"]) == {"64x64x64", "32x64x16"} and peak["dtype"] == "float32"
  assert peak["best_gflops"] == max(peak["by_shape"].values()) > 0
  s = common.spread([4.0, 1.0, 3.0, 2.0])
  assert s == {"median_s": 2.5, "min_s": 1.0, "p10_s": pytest.approx(1.3), "p90_s": pytest.approx(3.7),
               "num_steps": 4}
  times = common.step_times(lambda: np.zeros(1), warmup=0, min_time=0.0, min_iters=5)
  assert len(times) == 5 and all(t >= 0 for t in times)
