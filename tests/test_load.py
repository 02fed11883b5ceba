"""rsvlm_jax.load of a trained workdir: the training dataset need not exist; it reproduces the run's outputs."""
from __future__ import annotations

import json
import os
import re
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


def test_load_with_dris_reads_the_runs_calibration_and_load_run_falls_back_to_model_init(
    tiny_data_dir, tmp_path):  # noqa: F811
  """dris=True buckets each image as the run's own pipeline does (one reader of dris/thresholds.json, read
  only); a copy without that file is a clear error. load_run: a workdir without checkpoints serves the weights
  config.model_init names, and without model_init it is an error naming the checkpoints folder."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  config = tiny_config(tiny_data_dir, "dris=True,steps=1,ckpt_every=1", num_devices=1)
  job.run(config, str(workdir), mode="train")
  model = rsvlm_jax.load(str(workdir))
  pipe = model.input_pipeline()
  images = [pipe.record("test", i)["image"] for i in range(len(pipe.source("test")))]
  want = [pipe.buckets.resolutions[b] for b in pipe.bucket_ids("test")]
  assert len(set(want)) > 1, want  # Both buckets are used, so the comparison means something.
  assert model.dris_resolutions(images) == want
  z = model.encode_images(images[:6], dris=True, batch_size=4)
  # Each bucket's images run in batches padded to a bucketed size of their own count, not to batch_size.
  expected = set()
  for r in set(want[:6]):
    n = want[:6].count(r)
    expected |= {f"encode_images/{r}px/batch{loading.padded_batch_size(min(4, n - s), 4)}" for s in range(0, n, 4)}
  assert set(model.compiles.summary()) == expected, (want[:6], model.compiles.summary())
  for i in range(6):
    np.testing.assert_allclose(z[i], model.encode_images(images[i:i + 1], resolution=want[i])[0], atol=1e-5)

  copy = tmp_path / "copy"
  shutil.copytree(workdir, copy)
  os.remove(copy / "dris" / "thresholds.json")
  with pytest.raises(ValueError, match=r"copy/dris/thresholds.json is missing"):
    rsvlm_jax.load(str(copy)).encode_images(images[:1], dris=True)

  serve = tmp_path / "serve"
  serve.mkdir()
  with pytest.raises(FileNotFoundError, match=r"No checkpoint in .*serve/checkpoints"):
    loading.load_run(str(serve), config)
  config.model_init = str(workdir)
  served = loading.load_run(str(serve), config)
  assert served.directory == str(workdir) and served.step == model.step


MODEL = {"image": {"variant": "mu/8"}, "text": {"width": 32}}


@pytest.mark.parametrize("text,message", [
    ("[1, 2]", r"expected a JSON object \(a model config\), got a list"),
    ('"model"', r"expected a JSON object \(a model config\), got a string"),
    ("{}", r"config key 'model' is missing"),
    ('{"input": {"text_len": 32}}', r"config key 'model' is missing"),
    ('{"model": []}', r"config key 'model' should be an object, got a list"),
    ('{"model": {"text": {}}}', r"config key 'model.image' is missing"),
    ('{"model": {"image": "mu/8", "text": {}}}', r"config key 'model.image' should be an object, got a string"),
    ('{"model": {"image": {}, "text": {}, "decoder": 3}}', r"'model.decoder' should be an object or null"),
    ('{"model": {"image": {}, "text": {}, "embed_dim": "128"}}', r"'model.embed_dim' should be an integer"),
    ('{"model": {"image": {}, "text": {}, "embed_dim": 0}}', r"'model.embed_dim' should be a positive integer"),
    ('{"model": {"image": {}, "text": {}}, "input": [32]}', r"config key 'input' should be an object, got a list"),
    ('{"model": {"image": {}, "text": {}}, "input": {"text_len": "32"}}', r"'input.text_len' should be an integer"),
    ('{"model": {"image": {}, "text": {}}, "input": {"preprocess": "crop"}}', r"'input.preprocess' should be"),
    ('{"model": {"image": {}, "text": {}}, "dris": {"resolutions": "224"}}',
     r"'dris.resolutions' should be a list of numbers, got a string"),
    ('{"model": {"image": {}, "text": {}}, "dris": {"resolutions": []}}',
     r"'dris.resolutions' should be a non-empty list of positive integers"),
    ('{"model": {"image": {}, "text": {}}, "input": {"resolutions": [0]}}',  # An old layout, upgraded.
     r"'dris.resolutions' should be a non-empty list of positive integers"),
    ('{"model": {"image": {}, "text": {}}, "dris": {"coarse_to_fine": {"num_tiles": 2}}}',  # Removed; was on.
     r"dris.coarse_to_fine.num_tiles=2: coarse-to-fine tiles were removed in this version"),
    ('{"model": {"image": {}, "text": {}}, "fsdp": "yes"}', r"config key 'fsdp' should be a boolean"),
    ('{"model": ', r"not valid JSON"),
])
def test_a_malformed_config_json_is_one_error_naming_file_and_key(tmp_path, text, message):
  """Every tool loads through load(): a config.json of the wrong shape is a ValueError naming it (which each
  tool's error handler reports in one line), before any checkpoint or tokenizer is looked at."""
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  (tmp_path / "config.json").write_text(text)
  path = str(tmp_path / "config.json")
  with pytest.raises(ValueError, match=re.escape(path) + ": .*" + message):
    rsvlm_jax.load(str(tmp_path))
  with pytest.raises(ValueError, match=message):
    loading.read_config(str(tmp_path))


def test_a_well_formed_config_json_reads(tmp_path):
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  (tmp_path / "config.json").write_text(json.dumps(
      {"model": {**MODEL, "decoder": None}, "input": {"text_len": 77, "preprocess": "clip"},
       "dris": {"resolutions": [224]}, "keep_checkpoints": None, "converted_from": {"sha256": "0"}}))
  config = loading.read_config(str(tmp_path))
  assert config.model.decoder is None and list(config.dris.resolutions) == [224] and config.input.text_len == 77
  assert loading.model_root(str(tmp_path)) == str(tmp_path)
  (tmp_path / "checkpoints" / "5").mkdir(parents=True)
  assert loading.model_root(str(tmp_path / "checkpoints" / "5")) == str(tmp_path)
