"""Learned DRIS scorer: features, fit, numpy inference, file format, resolution gains, the fitting command."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsvlm_jax.dris import complexity
from rsvlm_jax.dris import learned as dris_learned
from rsvlm_jax.analysis import resolution_gain
from tests.fixtures import tiny_config
from tests.fixtures import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _random_scorer(f=5, hidden=7, seed=0):
  r = np.random.default_rng(seed)
  return dris_learned.LearnedScorer(mean=r.normal(size=f).astype(np.float32), std=r.uniform(.5, 2, f).astype(np.float32),
                                    w1=r.normal(size=(f, hidden)).astype(np.float32),
                             b1=r.normal(size=hidden).astype(np.float32),
                                    w2=r.normal(size=(hidden, 1)).astype(np.float32), b2=np.float32([0.3]))


def test_detail_map_closed_forms():
  flat = np.full((96, 80, 3), 120, np.uint8)
  assert np.all(dris_learned.detail_map(flat) == 0.0)  # Nothing to lose.
  checker = ((np.indices((128, 128)).sum(0) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
  # A one-pixel checkerboard averages to flat grey at half resolution: every cell loses |0/1 - 0.5| = 0.5.
  np.testing.assert_allclose(dris_learned.detail_map(checker), 0.5, atol=0.01)
  half = np.zeros((128, 128, 3), np.uint8)
  half[:, 64:] = 255  # One sharp edge: only the cells on it lose detail.
  dm = dris_learned.detail_map(half)
  assert dm[:, 3:5].min() > 0.0 and dm[:, :3].max() == 0.0 and dm[:, 5:].max() == 0.0


def test_features_are_deterministic_and_position_free():
  img = np.zeros((128, 128, 3), np.uint8)
  img[8:24, 8:24] = 255
  moved = np.roll(img, (64, 64), axis=(0, 1))  # The same square elsewhere (on the same 16 px cell grid).
  f = dris_learned.features(img)
  assert f.shape == (134,) and f.dtype == np.float32
  np.testing.assert_array_equal(f, dris_learned.features(img))
  np.testing.assert_allclose(f, dris_learned.features(moved), atol=1e-6)


def test_numpy_predict_equals_the_jax_forward():
  s = _random_scorer()
  x = np.random.default_rng(1).normal(size=(11, 5)).astype(np.float32)
  z = (jnp.asarray(x) - s.mean) / s.std
  ref = (jax.nn.gelu(z @ s.w1 + s.b1, approximate=True) @ s.w2 + s.b2)[:, 0]
  np.testing.assert_allclose(s.predict(x), np.asarray(ref), rtol=1e-5, atol=1e-5)


def test_fit_recovers_a_monotone_signal_on_held_out_data():
  r = np.random.default_rng(0)
  x = r.normal(size=(600, 6)).astype(np.float32)
  gain = np.tanh(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 + 0.05 * r.normal(size=600)
  s = dris_learned.fit(x[:500], gain[:500], hidden=16, steps=1500, weight_decay=1e-3, seed=0)
  assert dris_learned.spearman(s.predict(x[500:]), gain[500:]) > 0.9
  again = dris_learned.fit(x[:500], gain[:500], hidden=16, steps=1500, weight_decay=1e-3, seed=0)
  np.testing.assert_array_equal(again.w1, s.w1)  # Deterministic for a seed.


def test_spearman_and_rank_normalise():
  a = np.array([3.0, 1.0, 2.0, 10.0])
  np.testing.assert_allclose(dris_learned.rank_normalise(a), [2 / 3, 0, 1 / 3, 1])
  assert dris_learned.spearman(a, a ** 3) == pytest.approx(1.0)
  assert dris_learned.spearman(a, -a) == pytest.approx(-1.0)


def test_save_load_roundtrip_and_clear_errors(tmp_path):
  s = _random_scorer()
  path = str(tmp_path / "s.npz")
  s.save(path)
  x = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
  np.testing.assert_array_equal(dris_learned.load(path).predict(x), s.predict(x))
  with pytest.raises(FileNotFoundError, match="dris.scorer"):
    dris_learned.load(str(tmp_path / "missing.npz"))
  with np.load(path) as z:
    stale = dict(z)
  stale["version"] = np.int64(dris_learned.FEATURE_VERSION + 1)
  np.savez(str(tmp_path / "old.npz"), **stale)
  with pytest.raises(ValueError, match="refit"):
    dris_learned.load(str(tmp_path / "old.npz"))


def test_degrade_keeps_shape_and_flat_images():
  r = np.random.default_rng(0)
  imgs = r.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
  imgs[0] = 77
  out = resolution_gain.degrade(imgs, 8)
  assert out.shape == imgs.shape and out.dtype == np.uint8
  np.testing.assert_array_equal(out[0], imgs[0])
  assert np.abs(out[1].astype(int) - imgs[1]).mean() > 20  # Noise does not survive 4x downsampling.
  assert resolution_gain.degrade(imgs, 8, upsample=False).shape == (3, 8, 8, 3)


def test_per_image_losses_match_the_model_forward(tiny_data_dir, tmp_path):
  """make_loss_fn (one caption per image) against the training forward pass: per-row caption NLL from
  caption_logits, and i2t = logsumexp over the batch's captions minus the own-caption logit."""
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  tr = trainer_lib.Trainer(tiny_config(tiny_data_dir, num_devices=1), str(tmp_path / "run"))
  batch = tr.pipe.load_examples("train", np.arange(6), 0, seed=(0,), train=False)
  params = tr.state.params
  nll, i2t = resolution_gain.make_loss_fn(tr.model)(params, batch["image"], batch["text"][:, None])
  _, out = jax.jit(lambda p, b: tr.model.apply({"params": p}, b))(
      params, {"image": batch["image"], "text": batch["text"]})
  logits = np.asarray(out["caption_logits"], np.float64)
  logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(
      -1, keepdims=True)
  tgt = batch["text"]
  ce = -np.take_along_axis(logp, tgt[..., None], -1)[..., 0]
  mask = tgt != 0
  np.testing.assert_allclose(nll, (ce * mask).sum(-1) / mask.sum(-1), rtol=1e-4, atol=1e-5)
  sim = np.exp(float(params["logit_scale"])) * np.asarray(out["zimg"], np.float64) @ np.asarray(out["ztxt"]).T
  ref = np.log(np.exp(sim).sum(-1)) - np.diag(sim)
  np.testing.assert_allclose(i2t, ref, rtol=1e-4, atol=1e-4)


def test_pipeline_scores_with_the_learned_scorer(tiny_data_dir, tmp_path):
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  r = np.random.default_rng(0)
  f = 134
  s = dris_learned.LearnedScorer(mean=np.zeros(f, np.float32), std=np.ones(f, np.float32),
                                 w1=r.normal(size=(f, 4)).astype(np.float32) / 10, b1=np.zeros(4, np.float32),
                                 w2=r.normal(size=(4, 1)).astype(np.float32), b2=np.zeros(1, np.float32))
  path = str(tmp_path / "scorer.npz")
  s.save(path)
  cfg = tiny_config(tiny_data_dir, f"dris=True,scorer={path}")
  pipe = pipeline_lib.InputPipeline(cfg, str(tmp_path / "run"))
  scores = pipe.scores("train")
  expected = [s(pipe.record("train", i)["image"]) for i in range(len(scores))]
  np.testing.assert_allclose(scores, expected, rtol=1e-5)
  assert not np.allclose(scores, [complexity.image_score(pipe.record("train", i)["image"]) for i in range(len(scores))])
  ids = pipe.bucket_ids("train")
  assert np.all(np.diff(ids[np.argsort(scores, kind="stable")]) >= 0)  # Monotone in the learned score.
  with open(tmp_path / "run" / "dris" / "thresholds.json") as fh:
    assert json.load(fh)["scorer"] == path
  # Restarting the workdir with another scorer (or budget) would silently change its buckets: refused.
  with pytest.raises(ValueError, match="dris.scorer"):
    pipeline_lib.InputPipeline(tiny_config(tiny_data_dir, "dris=True"), str(tmp_path / "run"))
  with pytest.raises(ValueError, match="dris.budget"):
    pipeline_lib.InputPipeline(tiny_config(tiny_data_dir, f"dris=True,scorer={path},budget=0.7"),
                               str(tmp_path / "run"))
  again = pipeline_lib.InputPipeline(cfg, str(tmp_path / "run"))
  np.testing.assert_array_equal(again.thresholds, pipe.thresholds)


def test_fit_command_then_a_run_with_the_scorer(tiny_data_dir, tmp_path):
  """As a user runs it: train a teacher, fit the scorer with the command, bucket a DRIS run's data with it
  (training with a scorer is the ordinary pipeline path, covered by the test above)."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  teacher_arg = f"runlocal=True,data_dir={tiny_data_dir},steps=2,ckpt_every=2,res=48"
  teacher = str(tmp_path / "teacher")
  cfg = tiny_config(tiny_data_dir, "steps=2,ckpt_every=2")
  cfg.dris.resolutions = (48,)
  job.run(cfg, teacher, mode="train")
  with open(os.path.join(teacher, "config.json")) as fh:
    before = fh.read()
  out = tmp_path / "scorer" / "dris_scorer.npz"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
  proc = subprocess.run(
      [sys.executable, "-m", "rsvlm_jax.tools.fit_dris_scorer", f"--config=configs/demo.py:{teacher_arg}",
       f"--workdir={teacher}", f"--out={out}", "--low_res=16", "--max_images=40", "--hidden=8", "--fit_steps=50"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "scorer" / "dris_scorer.json") as fh:
    report = json.load(fh)
  assert report["num_images"] == 40 and report["num_check_fit"] == 32 and report["low_res"] == 16
  assert report["hidden"] == 8 and report["fit_steps"] == 50
  with np.load(out) as z:
    assert z["w1"].shape == (134, 8)  # The --hidden width is the saved scorer's.
  with np.load(tmp_path / "scorer" / "dris_scorer_gains.npz") as z:
    assert z["features"].shape == (40, 134)
    np.testing.assert_allclose(z["gain"], z["nll_low"] - z["nll"] + z["i2t_low"] - z["i2t"], rtol=1e-5, atol=1e-6)
  assert -1.0 <= report["spearman_heldout"] <= 1.0 and np.isfinite(report["gain_std"])
  with open(os.path.join(teacher, "config.json")) as fh:
    assert fh.read() == before  # The teacher's run record is left alone.
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  pipe = pipeline_lib.InputPipeline(tiny_config(tiny_data_dir, f"dris=True,scorer={out}"),
                                    str(tmp_path / "student"))
  assert sum(pipe.bucket_report("test")["histogram"]) == 16
  assert pipe.bucket_report("train")["histogram"][-1] > 0
