"""Each real-dataset config trains from a build of its builder's dummy data (the smoke switch runlocal=True).

This is the path a user takes with the real download: `python -m rsvlm_jax.build_dataset NAME
--manual_dir=M --data_dir=D`, then `python -m rsvlm_jax.main --config=configs/X.py:runlocal=True,data_dir=D`.
"""
import json
import os

import pytest

from rsvlm_jax import build_dataset
from rsvlm_jax import config as config_lib
from rsvlm_jax import job

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (config file and args, builder to build, dummy-data folder). Every config file, and both annotation
# formats through caption_dataset.py (Karpathy JSON: rsitmd; NWPU's dict keyed by class); UCM- and
# Sydney-Captions share the Karpathy path and are covered by their builder tests.
CASES = [
    ("rsicd_retrieval.py:", "rsicd", "rsicd"),
    ("rs_gpt4v_b16.py:", "rs_gpt4v/captions", "rs_gpt4v"),
    ("caption_dataset.py:dataset=rsitmd,", "rsitmd", "rsitmd"),
    ("caption_dataset.py:dataset=nwpu_captions,", "nwpu_captions", "nwpu_captions"),
]


@pytest.mark.parametrize("config_spec,builder,dummy", CASES, ids=[c[1] for c in CASES])
def test_config_trains_on_its_dummy_build(config_spec, builder, dummy, tmp_path):
  data_dir = str(tmp_path / "tfds")
  build_dataset.build(builder, data_dir, os.path.join(ROOT, "datasets", dummy, "dummy_data"))
  # rsicd runs with the config's DRIS buckets; the others with one bucket, to keep the suite fast.
  dris = "" if builder == "rsicd" else ",dris=False"
  config = config_lib.load_config(config_lib.config_path(config_spec) + f"runlocal=True,data_dir={data_dir}{dris}")
  config.total_steps = config.ckpt_every = 2
  workdir = str(tmp_path / "run")
  mode = "train_and_eval" if builder == "rsicd" else "train"
  metrics = job.run(config, workdir, mode=mode)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line) for line in f if line.strip()]
  train_steps = [s for s in steps if "loss" in s]
  assert [s["step"] for s in train_steps] == [1, 2]
  assert all(abs(s["loss"]) < 1e6 for s in train_steps)
  if mode == "train_and_eval":  # Retrieval-only config: retrieval metrics, no captioning evaluator.
    assert "t2i_R@10" in metrics["retrieval"] and "captioning" not in metrics
