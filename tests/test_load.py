"""rsvlm_jax.load of a trained workdir: the training dataset need not exist; it reproduces the run's outputs."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import rsvlm_jax
from tests.fixtures import tiny_config
from tests.fixtures import tiny_data_dir  # noqa: F401  pylint: disable=unused-import


def test_load_a_trained_workdir_without_its_dataset(tiny_data_dir, tmp_path):  # noqa: F811
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / "tfds")
  shutil.copytree(tiny_data_dir, data_dir)
  config = tiny_config(data_dir, "steps=2,ckpt_every=2", num_devices=1)
  workdir = str(tmp_path / "run")
  trainer = trainer_lib.Trainer(config, workdir)
  trainer.train()
  predictor = job.predictor(trainer)
  batch = trainer.pipe.load_examples("test", np.arange(4), 0, seed=(0,), train=False)
  ref_i = predictor.encode_images(trainer.state.params, {"image": batch["image"]})
  ref_t = predictor.encode_texts(trainer.state.params, batch["text"])
  ref_c = [trainer.pipe.tokenizer.decode(r) for r in predictor.caption(trainer.state.params,
                                                                      {"image": batch["image"]})]
  texts = [trainer.pipe.tokenizer.decode(r) for r in batch["text"]]
  shutil.rmtree(data_dir)  # The model must not need its training data.
  before = sorted((p, os.path.getmtime(os.path.join(d, p))) for d, _, ps in os.walk(workdir) for p in ps)

  model = rsvlm_jax.load(workdir)
  assert model.step == 2 and model.resolution == 32 and model.text_len == config.input.text_len
  np.testing.assert_array_equal(model.tokenize(texts), trainer.pipe.tokenizer.encode_batch(texts, model.text_len))
  np.testing.assert_allclose(model.encode_images(batch["image"]), ref_i, atol=1e-5, rtol=0)
  np.testing.assert_allclose(model.encode_texts(texts), np.asarray(
      predictor.encode_texts(trainer.state.params, model.tokenize(texts))), atol=1e-5, rtol=0)
  assert np.abs(model.encode_texts(texts) - ref_t).max() < 0.5  # Decoded-and-retokenized captions stay close.
  assert model.caption(batch["image"]) == ref_c
  # Images of another size are resized as the pipeline does; a checkpoints/STEP path loads the same run.
  big = np.repeat(np.repeat(batch["image"], 2, axis=1), 2, axis=2)
  assert model.encode_images(big).shape == (4, config.model.embed_dim)
  again = rsvlm_jax.load(os.path.join(workdir, "checkpoints", "2"))
  np.testing.assert_array_equal(again.encode_images(batch["image"]), model.encode_images(batch["image"]))
  after = sorted((p, os.path.getmtime(os.path.join(d, p))) for d, _, ps in os.walk(workdir) for p in ps)
  assert before == after  # Nothing written into the run.


def test_load_errors_name_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match="No such model directory: .*nowhere"):
    rsvlm_jax.load(str(tmp_path / "nowhere"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="empty is neither a trained workdir nor a converted model"):
    rsvlm_jax.load(str(tmp_path / "empty"))
