"""Converted open_clip weights fine-tune through configs/clip_finetune.py on a runlocal dataset build, are served
with DRIS buckets, and `rsvlm_jax.load` of the fine-tuned workdir reproduces the trainer's embeddings."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

pytest.importorskip("open_clip")

import rsvlm_jax  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax import build_dataset  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax import config as config_lib  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax import config_schema  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.tools import convert_open_clip  # noqa: E402  pylint: disable=wrong-import-position
from tests.convert import open_clip_models as ocm  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _converted_model_and_rsicd(tmp_path) -> tuple[str, str]:
  """(a converted tiny random open_clip model, a data_dir with the rsicd dummy build)."""
  converted = convert_open_clip.convert(ocm.save_state_dict(ocm.random_clip(), str(tmp_path / "m.pt")),
                                        str(tmp_path / "clip"), model_config=ocm.write_arch(tmp_path))
  data_dir = str(tmp_path / "tfds")
  build_dataset.build("rsicd", data_dir, os.path.join(ROOT, "datasets", "rsicd", "dummy_data"))
  return converted, data_dir


def test_finetune_converted_model_then_load_the_workdir(tmp_path):
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  converted, data_dir = _converted_model_and_rsicd(tmp_path)
  config = config_schema.gate(config_lib.load_config(config_lib.config_path("clip_finetune.py") + (
      f":init={converted},dataset=rsicd,data_dir={data_dir},runlocal=True,dris=True,local_w=0.5")))
  assert tuple(config.dris.resolutions) == (16, 24, 32) and config.dris.train == "largest"
  assert config.optim.lr == 5e-6 and config.optim.weight_decay == 0.5 and config.model_init_fresh == "^dec/"
  config.async_checkpoint = False
  workdir = str(tmp_path / "run")

  trainer = trainer_lib.Trainer(config, workdir)
  start = jax.device_get(trainer.state.params)
  trainer.train()
  assert trainer.model_init["fresh"] and all(k.startswith("dec/") for k in trainer.model_init["fresh"])
  # The towers start from the converted weights (a random init is far from them; 3 steps at lr 5e-6 are not).
  init = rsvlm_jax.load(converted).params
  trained = jax.device_get(trainer.state.params)
  for path in (("img", "cls_token"), ("txt", "embedding", "embedding"), ("img_proj", "kernel")):
    get = lambda tree: np.asarray(tree[path[0]][path[1]] if len(path) == 2 else tree[path[0]][path[1]][path[2]])
    assert np.abs(get(start) - get(init)).max() > 0.05
    assert np.abs(get(trained) - get(init)).max() < 1e-3
  results = job.evaluate(trainer)
  assert sum(results["efficiency"]["histogram"]) > 0 and len(results["efficiency"]["histogram"]) == 3
  assert "CIDEr-D" in results["captioning"]

  # The workdir holds the CLIP tokenizer and loads without the dataset.
  assert os.path.isfile(os.path.join(workdir, "tokenizer_bpe.txt.gz"))
  loaded = rsvlm_jax.load(workdir)
  assert loaded.step == 3 and loaded.has_decoder
  images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  texts = ["a port with many ships", "farmland", "", "an airport"]
  ref_i = job.predictor(trainer).encode_images(trainer.state.params, {"image": images})
  ref_t = job.predictor(trainer).encode_texts(trainer.state.params, loaded.tokenize(texts))
  np.testing.assert_allclose(loaded.encode_images(images), ref_i, atol=1e-5, rtol=0)
  np.testing.assert_allclose(loaded.encode_texts(texts), ref_t, atol=1e-5, rtol=0)
  tuned = np.abs(loaded.encode_images(images) - rsvlm_jax.load(converted).encode_images(images)).max()
  assert tuned > 1e-6  # Fine-tuning changed the towers.
  captions = loaded.caption(images[:2])
  assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["model"]["image"]["mlp_act"] == "gelu"


def test_finetune_without_region_levels_leaves_the_token_projection_unused(tmp_path):
  """With local_w=object_w=0 the model has no img_token_proj: config.model_init_skip lets the converted one
  go unused (named in the log) instead of failing; without it, the mismatch is an error naming the param."""
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  converted, data_dir = _converted_model_and_rsicd(tmp_path)
  config = config_schema.gate(config_lib.load_config(config_lib.config_path("clip_finetune.py") + (
      f":init={converted},dataset=rsicd,data_dir={data_dir},runlocal=True,decoder=False")))
  assert config.model_init_skip == "^img_token_proj/" and "captioning" not in config.evals
  trainer = trainer_lib.Trainer(config, str(tmp_path / "run"))
  assert trainer.init_from_model() and "img_token_proj" not in trainer.state.params
  config.model_init_skip = ""
  strict = trainer_lib.Trainer(config, str(tmp_path / "run2"))
  with pytest.raises(ValueError, match=r"img_token_proj/kernel: checkpoint \(64, 32\) vs model None"):
    strict.init_from_model()
