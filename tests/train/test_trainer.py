"""End to end on the tiny synthetic set: one short run, outputs, resumption, 1 vs 8 devices, failures."""
import json
import os

import jax
import numpy as np
import pytest

from rsvlm_jax import job as main_lib
from rsvlm_jax.runtime import checkpoint as checkpoint_lib
from rsvlm_jax.train import trainer as trainer_lib
from tests.fixtures import read_jsonl, tiny_config


def test_short_run_writes_everything(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  metrics = main_lib.run(tiny_config(tiny_data_dir, "steps=4,ckpt_every=2,eval_every=2"), workdir)
  for name in ("config.json", "run_info.json", "metrics.json", "metrics.jsonl", "tokenizer.model"):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert os.listdir(os.path.join(workdir, "tensorboard"))
  with open(os.path.join(workdir, "metrics.json")) as f:
    on_disk = json.load(f)
  for k in ("t2i_R@1", "t2i_R@5", "t2i_R@10", "i2t_R@1", "i2t_R@5", "i2t_R@10", "mR"):
    assert 0.0 <= on_disk["retrieval"][k] <= 100.0
  assert {"BLEU-4", "CIDEr-D"} <= set(on_disk["captioning"])
  assert on_disk["num_test_images"] == 16
  # Per-complexity breakdown: thirds of the test split by DRIS score, each scored on its own images.
  by = on_disk["by_complexity"]
  assert list(by) == ["simple", "medium", "dense"]
  assert sum(g["retrieval"]["num_images"] for g in by.values()) == 16
  assert sum(g["captioning"]["num_images"] for g in by.values()) == 16
  assert all(0.0 <= g["retrieval"]["t2i_R@10"] <= 100.0 and "CIDEr-D" in g["captioning"] for g in by.values())
  ex = on_disk["examples"][0]
  assert {"image_id", "prediction", "references"} <= set(ex) and len(ex["references"]) == 5
  rows = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  train_rows = [r for r in rows if "loss" in r]
  assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
  assert all(np.isfinite(r["loss"]) for r in train_rows)
  # eval_every=2: the evals ran at step 2 too, through the same jit'd inference functions as the final ones
  # (each compiled once), counted with the train step's compilations.
  eval_rows = [r for r in rows if "retrieval/t2i_R@10" in r]
  assert [r["step"] for r in eval_rows] == [2] and "captioning/CIDEr-D" in eval_rows[0]
  inference = {k: v for k, v in metrics["compilations"].items() if not k.startswith("train:")}
  assert inference and all(v == 1 for v in inference.values()), metrics["compilations"]
  with open(os.path.join(workdir, "run_info.json")) as f:
    info = json.load(f)
  assert info["packages"]["jax"] == jax.__version__ and "commit" in info["git"]
  assert checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints")).all_steps() == [2, 4]
  assert metrics["step"] == 4
  # Running again on the same workdir resumes (nothing left to train) instead of retraining.
  again = main_lib.run(tiny_config(tiny_data_dir, "steps=4,ckpt_every=2,eval_every=2"), workdir)
  assert again["train"] == {} and again["step"] == 4
  assert len([r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "loss" in r]) == 4


def test_resume_continues_the_same_curve(tiny_data_dir, tmp_path):
  cfg = lambda: tiny_config(tiny_data_dir, "steps=6,ckpt_every=3")
  full = str(tmp_path / "full")
  main_lib.run(cfg(), full, mode="train")
  part = str(tmp_path / "part")
  # Stop after the step-3 checkpoint (as an interruption would), then resume in a fresh trainer.
  trainer_lib.Trainer(cfg(), part).train(stop_after=3)
  main_lib.run(cfg(), part, mode="train")
  full_losses = {r["step"]: r["loss"] for r in read_jsonl(os.path.join(full, "metrics.jsonl")) if "loss" in r}
  part_rows = [r for r in read_jsonl(os.path.join(part, "metrics.jsonl")) if "loss" in r]
  assert [r["step"] for r in part_rows] == [1, 2, 3, 4, 5, 6]
  for r in part_rows:
    assert r["loss"] == full_losses[r["step"]], r["step"]


def test_one_device_equals_eight(tiny_data_dir, tmp_path):
  assert jax.device_count() == 8
  losses = {}
  for n in (1, 8):
    workdir = str(tmp_path / f"d{n}")
    main_lib.run(tiny_config(tiny_data_dir, "steps=3,ckpt_every=3", num_devices=n), workdir, mode="train")
    losses[n] = [r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "loss" in r]
  np.testing.assert_allclose(losses[1], losses[8], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("host_sync_every", [1, 10])
def test_nan_stops_with_step_and_keeps_last_good_checkpoint(tiny_data_dir, tmp_path, monkeypatch, host_sync_every):
  """Fetching metrics every step or every 10 steps, the first non-finite step is named exactly and the
  checkpoint after it is never written (the step-4 checkpoint flushes steps 3-4 first)."""
  workdir = str(tmp_path / "nan")
  original = trainer_lib.Trainer._train_step_fn

  def poisoned(self):
    step_fn = original(self)

    def wrapped(state, batch):
      new_state, metrics = step_fn(state, batch)
      bad = new_state.step >= 3
      poison = lambda x: jax.numpy.where(bad, jax.numpy.nan, x)
      metrics = dict(metrics, loss=poison(metrics["loss"]))
      return new_state.replace(params=jax.tree.map(poison, new_state.params)), metrics

    return wrapped

  monkeypatch.setattr(trainer_lib.Trainer, "_train_step_fn", poisoned)
  trainer = trainer_lib.Trainer(tiny_config(tiny_data_dir, "steps=6,ckpt_every=2", host_sync_every=host_sync_every),
                                workdir)
  with pytest.raises(trainer_lib.NonFiniteLossError, match="at step 3"):
    trainer.train()
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"))
  assert ckpt.all_steps() == [2]
  step, state, _ = ckpt.restore_latest(trainer.abstract_state)
  assert step == 2 and all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_crash_during_save_leaves_previous_checkpoint_usable(tiny_data_dir, tmp_path, monkeypatch):
  workdir = str(tmp_path / "crash")
  main_lib.run(tiny_config(tiny_data_dir, "steps=2,ckpt_every=2"), workdir, mode="train")
  ckdir = os.path.join(workdir, "checkpoints")
  # A save that died half-way: orbax's temporary directory for step 4 with partial content.
  partial = os.path.join(ckdir, "4.orbax-checkpoint-tmp-1234567")
  os.makedirs(os.path.join(partial, "state"))
  with open(os.path.join(partial, "state", "partial.bin"), "wb") as f:
    f.write(b"\0" * 100)
  # And a "finished" step whose files were lost (e.g. a torn copy): it must be skipped, not trusted.
  torn = os.path.join(ckdir, "3")
  os.makedirs(os.path.join(torn, "state"))
  trainer = trainer_lib.Trainer(tiny_config(tiny_data_dir, "steps=4,ckpt_every=2"), workdir)
  assert trainer.restore() is not None
  assert int(trainer.state.step) == 2
  trainer.train()
  assert 4 in checkpoint_lib.Checkpointer(ckdir).all_steps()


def test_nan_before_any_checkpoint_says_no_checkpoint_was_written(tiny_data_dir, tmp_path, monkeypatch):
  original = trainer_lib.Trainer._train_step_fn

  def poisoned(self):
    step_fn = original(self)

    def wrapped(state, batch):
      new_state, metrics = step_fn(state, batch)
      return new_state, dict(metrics, loss=metrics["loss"] * jax.numpy.nan)

    return wrapped

  monkeypatch.setattr(trainer_lib.Trainer, "_train_step_fn", poisoned)
  workdir = str(tmp_path / "nan")
  trainer = trainer_lib.Trainer(tiny_config(tiny_data_dir, "steps=4,ckpt_every=4", host_sync_every=1), workdir)
  with pytest.raises(trainer_lib.NonFiniteLossError) as e:
    trainer.train()
  assert "at step 1" in str(e.value) and "No checkpoint was written yet" in str(e.value)
  assert "None" not in str(e.value)
