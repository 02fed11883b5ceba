"""Own data without a builder: caption_files (dummy CSV) trains 2 steps through caption_dataset.py and
clip_finetune.py in runlocal mode, built through the user's path (rsvlm_jax.build_dataset)."""
import json
import os

import pytest

from rsvlm_jax import build_dataset
from rsvlm_jax import config as config_lib
from rsvlm_jax import job

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMMY = os.path.join(ROOT, "datasets", "caption_files", "dummy_data")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("tfds"))
  build_dataset.build("caption_files", d, DUMMY)
  return d


def _train_two_steps(config, workdir):
  config.total_steps = config.ckpt_every = 2
  job.run(config, workdir, mode="train")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line) for line in f if line.strip()]
  train_steps = [s for s in steps if "loss" in s]
  assert [s["step"] for s in train_steps] == [1, 2]
  assert all(abs(s["loss"]) < 1e6 for s in train_steps)


def test_caption_dataset_config_trains(data_dir, tmp_path):
  config = config_lib.load_config(config_lib.config_path("caption_dataset.py:") +
                                  f"dataset=caption_files,runlocal=True,data_dir={data_dir},dris=False")
  _train_two_steps(config, str(tmp_path / "run"))


def test_clip_finetune_config_trains(data_dir, tmp_path):
  pytest.importorskip("open_clip")
  from rsvlm_jax.tools import convert_open_clip  # pylint: disable=g-import-not-at-top
  from tests.convert import open_clip_models as ocm  # pylint: disable=g-import-not-at-top
  ckpt = ocm.save_state_dict(ocm.random_clip(), str(tmp_path / "m.safetensors"), "safetensors")
  init = convert_open_clip.convert(ckpt, str(tmp_path / "clip"), model_config=ocm.write_arch(tmp_path))
  # No caption decoder, to keep the test fast (caption_dataset.py trains one on the same build).
  config = config_lib.load_config(config_lib.config_path("clip_finetune.py:") + f"init={init},dataset=caption_files,"
                                  f"runlocal=True,data_dir={data_dir},decoder=False")
  _train_two_steps(config, str(tmp_path / "run"))
