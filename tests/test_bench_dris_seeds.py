"""bench.dris_seeds: statistics over seeds of bench.dris results, against Python's statistics module."""
import json
import math
import statistics

import pytest

from bench import dris_seeds


def _result(seed, r10_max, r10_serve, cider_serve, reproduces=True, with_min=True):
  def row(name, r10, cider):
    return {"name": name, "encoder_gflops_per_image": 0.58 if name == "fixed_max" else 0.28,
            "t2i_R@10": r10, "CIDEr-D": cider,
            "by_complexity": {"dense": {"t2i_R@10": r10 + 1, "CIDEr-D": cider, "num_images": 100}}}
  runs = [row("fixed_max", r10_max, 1.7), row("dris_serve", r10_serve, cider_serve)]
  if with_min:
    runs.insert(1, row("fixed_min", 38.0, 1.6))
  return {"seed": seed, "runs": runs,
          "summary": {"gflops_saving_vs_fixed_max": 0.5,
                      "dris_serve": {"t2i_R@10_rel_to_fixed_max": r10_serve / r10_max - 1,
                                     "at_max_reproduces_fixed_max": reproduces}}}


def test_aggregate_matches_statistics_module():
  res = [_result(0, 43.2, 41.3, 1.80), _result(1, 43.8, 42.0, 1.89), _result(2, 40.4, 39.7, 1.66, with_min=False)]
  agg = dris_seeds.aggregate(res)
  assert agg["seeds"] == [0, 1, 2]
  serve = agg["runs"]["dris_serve"]["t2i_R@10"]
  values = [41.3, 42.0, 39.7]
  assert serve["mean"] == pytest.approx(statistics.mean(values))
  assert serve["std"] == pytest.approx(statistics.stdev(values))
  assert serve["sem"] == pytest.approx(statistics.stdev(values) / math.sqrt(3))
  assert agg["runs"]["dris_serve"]["dense_t2i_R@10"]["mean"] == pytest.approx(statistics.mean(values) + 1)
  assert agg["runs"]["fixed_min"]["t2i_R@10"]["num_seeds"] == 2  # Missing in seed 2: averaged over two.
  rel = agg["summary"]["dris_serve"]["t2i_R@10_rel_to_fixed_max"]["mean"]
  assert rel == pytest.approx(statistics.mean([41.3 / 43.2 - 1, 42.0 / 43.8 - 1, 39.7 / 40.4 - 1]))
  assert agg["summary"]["dris"]["gflops_saving_vs_fixed_max"]["std"] == 0.0
  assert agg["summary"]["dris_serve"]["at_max_reproduces_fixed_max"] is True
  agg = dris_seeds.aggregate(res + [_result(3, 40.0, 39.0, 1.7, reproduces=False)])
  assert agg["summary"]["dris_serve"]["at_max_reproduces_fixed_max"] is False  # One seed failing is a failure.
  assert "| dris_serve | 4 |" in dris_seeds.markdown(agg)


def test_main_names_a_bad_file(tmp_path):
  bad = tmp_path / "not_bench.json"
  bad.write_text(json.dumps({"points": []}))
  with pytest.raises(ValueError, match="not_bench.json is not a bench.dris result"):
    dris_seeds.main(["prog", str(bad)])
  with pytest.raises(ValueError, match="at least one"):
    dris_seeds.aggregate([])
