"""analysis/frontier.py (bench.dris_frontier): per-bucket tables composed into any allocation reproduce the normal
evaluation; the run is loaded read only (load_run), no Trainer."""
from __future__ import annotations

import json
import os

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
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  cfg = tiny_config(tiny_data_dir, "dris=True,steps=3,ckpt_every=3", num_devices=1)
  job.run(cfg, workdir, mode="train")
  before = _listing(workdir)
  out = dris_frontier.run_frontier(workdir, budgets=(0.5, 0.8), batch=8)  # What the command does.
  assert _listing(workdir) == before  # Read only.
  assert out["run"] == workdir
  points = {(p["policy"], p["budget"]): p for p in out["points"]}
  tr = trainer_lib.Trainer(loading.read_config(workdir), workdir, write_record=False)  # The reference.
  assert tr.restore() is not None
  own = job.evaluate(tr)
  run = points[("run", cfg.dris.budget)]
  assert run["t2i_R@10"] == pytest.approx(own["retrieval"]["t2i_R@10"])
  assert run["CIDEr-D"] == pytest.approx(own["captioning"]["CIDEr-D"])
  assert run["bucket_histogram"] == own["efficiency"]["histogram"]
  assert run["encoder_gflops_per_image"] == pytest.approx(own["efficiency"]["encoder_gflops_per_image"])

  forced = tiny_config(tiny_data_dir, "dris=True,steps=3,ckpt_every=3", num_devices=1)
  forced.dris.thresholds = (-1e9,)  # Every image in bucket 1, through the ordinary pipeline and evaluators.
  tr.pipe = pipeline_lib.InputPipeline(forced, workdir)
  ev1 = job.evaluate(tr)
  top = points[("bucket_1", None)]
  assert top["bucket_histogram"] == [0, 16]
  assert top["t2i_R@10"] == pytest.approx(ev1["retrieval"]["t2i_R@10"])
  assert top["CIDEr-D"] == pytest.approx(ev1["captioning"]["CIDEr-D"])

  for budget in (0.5, 0.8):
    at = {name: points[(name, budget)] for name in ("complexity", "random", "oracle")}
    assert len({tuple(p["bucket_histogram"]) for p in at.values()}) == 1
    assert all(at["oracle"]["loss"] <= p["loss"] + 1e-6 for p in at.values())
  assert out["buckets"]["resolutions"] == [32, 48]


def _listing(directory):
  return sorted((p, os.path.getmtime(os.path.join(d, p)), os.path.getsize(os.path.join(d, p)))
                for d, _, ps in os.walk(directory) for p in ps)


def test_frontier_refuses_what_it_cannot_measure(tiny_data_dir, tmp_path):  # noqa: F811
  """No checkpoint and no model_init: a clear error naming the path."""
  from bench import dris_frontier  # pylint: disable=g-import-not-at-top
  cfg = tiny_config(tiny_data_dir, "dris=True,steps=1,ckpt_every=1", num_devices=1)
  with pytest.raises(FileNotFoundError, match=r"No checkpoint in .*empty.*model_init"):
    dris_frontier.run_frontier(str(tmp_path / "empty"), cfg)


def test_bucket_jitter_needs_mixed_batches(tiny_data_dir, tmp_path):  # noqa: F811
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  cfg = tiny_config(tiny_data_dir, "dris=True,mixed=false")
  cfg.dris.bucket_jitter = 0.5
  pipe = pipeline_lib.InputPipeline(cfg, str(tmp_path / "run"))
  with pytest.raises(ValueError, match="dris.mixed_buckets"):
    pipe.train_plan()


def test_dris_at_serve_trains_at_the_largest_bucket_and_serves_with_dris(tiny_data_dir, tmp_path):  # noqa: F811
  """dris.train=largest (demo arg dris_at=serve): every train step is at the largest bucket (no scoring, no calibration during
  training); evaluation uses calibrated buckets, and a later scorer recalibrates instead of being refused
  (scores are cached per scorer, so the new scorer's scores are really used)."""
  from rsvlm_jax.dris import calibration  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.dris import learned as dris_learned  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  cfg = tiny_config(tiny_data_dir, "dris=True,dris_at=serve,steps=2,ckpt_every=2", num_devices=1)
  tr = trainer_lib.Trainer(cfg, str(workdir))
  tr.train()
  train_keys = [k for k in tr.tracker.summary() if k.startswith("train:")]
  assert len(train_keys) == 1 and "image(8, 48, 48, 3)" in train_keys[0], train_keys
  assert not (workdir / "dris").exists()  # Nothing was scored or calibrated to train.
  assert tr.pipe.bucket_report("train", training=True)["histogram"] == [0, 48]
  served = tr.pipe.bucket_report("test")["histogram"]
  assert sum(served) == 16 and min(served) > 0
  with open(workdir / "dris" / "thresholds.json") as f:
    assert json.load(f)["scorer"] == "complexity"

  r = np.random.default_rng(1)
  s = dris_learned.LearnedScorer(mean=np.zeros(134, np.float32), std=np.ones(134, np.float32),
                                 w1=r.normal(size=(134, 4)).astype(np.float32) / 10, b1=np.zeros(4, np.float32),
                                 w2=r.normal(size=(4, 1)).astype(np.float32), b2=np.zeros(1, np.float32))
  path = str(tmp_path / "scorer.npz")
  s.save(path)
  cfg.dris.scorer = path
  pipe = pipeline_lib.InputPipeline(cfg, str(workdir))
  scores = pipe.scores("train")
  np.testing.assert_allclose(scores, [s(pipe.record("train", i)["image"]) for i in range(48)], rtol=1e-5)
  np.testing.assert_allclose(pipe.thresholds, calibration.calibrate_thresholds(scores, pipe.buckets, 0.5))
  with open(workdir / "dris" / "thresholds.json") as f:
    assert json.load(f)["scorer"] == path
  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="dris.train"):  # Refused by the one config gate, where a run starts.
    cfg.dris.train = "training"
    config_schema.gate(cfg)


def test_coarse_probe_is_cross_fitted_and_recovers_a_linear_signal():
  from rsvlm_jax.analysis import frontier  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.dris import learned as dris_learned  # pylint: disable=g-import-not-at-top
  r = np.random.default_rng(0)
  x = r.normal(size=(200, 12))
  y = x @ r.normal(size=12) + 0.3 * r.normal(size=200)
  s = frontier.coarse_probe(x, y)
  assert len(np.unique(s)) == 200 and 0 < s.min() and s.max() < 1
  assert dris_learned.spearman(s, y) > 0.8
  # Held out means held out: on a pure-noise target an in-sample fit with 150 features would track the
  # target closely; the cross-fitted scores must not.
  xn, yn = r.normal(size=(200, 150)), r.normal(size=200)
  w = np.linalg.lstsq(xn, yn, rcond=None)[0]
  assert dris_learned.spearman(xn @ w, yn) > 0.6  # The overfit a leaky probe would show.
  assert abs(dris_learned.spearman(frontier.coarse_probe(xn, yn), yn)) < 0.25

