"""DRIS steady state: 50 steps that mix buckets compile the train step exactly once per bucket."""
import collections
import os

from rsvlm_jax.train import trainer as trainer_lib
from tests.fixtures import read_jsonl, tiny_config


def test_fifty_mixed_bucket_steps_compile_once_per_bucket(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  config = tiny_config(tiny_data_dir, "steps=50,ckpt_every=50,dris=True,budget=0.75", **{"evals": {}})
  trainer = trainer_lib.Trainer(config, workdir)
  summary = trainer.train()
  rows = [r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "loss" in r]
  buckets = collections.Counter(int(r["bucket"]) for r in rows)
  assert len(rows) == 50
  assert len(buckets) == 2, buckets  # two buckets (32 and 48 px); at a 75% budget both occur.
  compilations = summary["compilations"]
  train_keys = {k: v for k, v in compilations.items() if k.startswith("train:")}
  assert len(train_keys) == 2, compilations
  assert all(v == 1 for v in train_keys.values()), compilations


def test_mixed_bucket_batches_compile_once_in_all(tiny_data_dir, tmp_path):
  """dris.mixed_buckets: every step holds a static sub-batch of each bucket, so one compilation serves all."""
  workdir = str(tmp_path / "run")
  config = tiny_config(tiny_data_dir, "steps=12,ckpt_every=12,dris=True,budget=0.75,mixed=True",
                       **{"evals": {}, "input.batch_size": 16})  # 16 = two sub-batches of 8 over 8 devices.
  trainer = trainer_lib.Trainer(config, workdir)
  assert trainer.pipe.mixed and len(trainer.pipe.train_plan().sizes) == 2
  summary = trainer.train()
  rows = [r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "loss" in r]
  assert len(rows) == 12 and all(r["bucket"] == -1 for r in rows)
  train_keys = {k: v for k, v in summary["compilations"].items() if k.startswith("train:")}
  assert list(train_keys.values()) == [1], summary["compilations"]
  assert "image(8, 32, 32, 3)+(8, 48, 48, 3)" in next(iter(train_keys))  # One PerBucket field, both buckets.
