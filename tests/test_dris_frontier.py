"""bench.dris_frontier: per-bucket tables composed into any allocation reproduce the normal evaluation."""
from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures import tiny_config
from tests.fixtures import tiny_data_dir  # noqa: F401  pylint: disable=unused-import


def test_frontier_reproduces_the_run_and_fixed_bucket_evaluations(tiny_data_dir, tmp_path):  # noqa: F811
  """The 'run' point equals the run's own evaluation and 'bucket_1' equals an evaluation that forces every
  image into bucket 1 (config thresholds), both through the evaluators; every policy at a budget spends the
  same tokens, and with two buckets the loss oracle is the lowest-loss allocation of that histogram."""
  from bench import dris_frontier  # pylint: disable=g-import-not-at-top
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  cfg = tiny_config(tiny_data_dir, "dris=True,steps=3,ckpt_every=3", num_devices=1)
  job.run(cfg, workdir, mode="train")
  config = dris_frontier.load_run_config(workdir)  # What the command does without --config.
  tr = trainer_lib.Trainer(config, workdir, write_record=False)
  assert tr.restore() is not None
  out = dris_frontier.frontier(tr, budgets=(0.5, 0.8), batch=8)
  points = {(p["policy"], p["budget"]): p for p in out["points"]}
  own = tr.evaluate()
  run = points[("run", cfg.input.budget)]
  assert run["t2i_R@10"] == pytest.approx(own["retrieval"]["t2i_R@10"])
  assert run["CIDEr-D"] == pytest.approx(own["captioning"]["CIDEr-D"])
  assert run["bucket_histogram"] == own["efficiency"]["histogram"]
  assert run["encoder_gflops_per_image"] == pytest.approx(own["efficiency"]["encoder_gflops_per_image"])

  forced = tiny_config(tiny_data_dir, "dris=True,steps=3,ckpt_every=3", num_devices=1)
  forced.input.thresholds = (-1e9,)
  tr1 = trainer_lib.Trainer(forced, workdir, write_record=False)
  assert tr1.restore() is not None
  ev1 = tr1.evaluate()
  top = points[("bucket_1", None)]
  assert top["bucket_histogram"] == [0, 16]
  assert top["t2i_R@10"] == pytest.approx(ev1["retrieval"]["t2i_R@10"])
  assert top["CIDEr-D"] == pytest.approx(ev1["captioning"]["CIDEr-D"])

  for budget in (0.5, 0.8):
    at = {name: points[(name, budget)] for name in ("complexity", "random", "oracle")}
    assert len({tuple(p["bucket_histogram"]) for p in at.values()}) == 1
    assert all(at["oracle"]["loss"] <= p["loss"] + 1e-6 for p in at.values())
  assert out["buckets"]["resolutions"] == [32, 48]


def test_bucket_jitter_needs_mixed_batches(tiny_data_dir, tmp_path):  # noqa: F811
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  cfg = tiny_config(tiny_data_dir, "dris=True,mixed=false")
  cfg.input.bucket_jitter = 0.5
  pipe = pipeline_lib.InputPipeline(cfg.input, str(tmp_path / "run"), seed=0)
  with pytest.raises(ValueError, match="input.mixed_buckets"):
    pipe.train_plan()
