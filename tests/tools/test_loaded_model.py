"""rsvlm_jax.load on small jobs: batches padded to a few bucketed sizes, one item accepted, a quiet load."""
from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import rsvlm_jax
from rsvlm_jax import loading


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (32 + 4 * i, 40, 3), dtype=np.uint8) for i in range(n)]


def _sizes(model, name: str) -> set[int]:
  """The padded batch sizes `name` compiled for so far."""
  return {int(re.search(r"batch(\d+)$", k).group(1)) for k in model.compiles.summary() if k.startswith(name + "/")}


def test_batch_buckets():
  assert loading.batch_buckets(32) == (1, 2, 4, 8, 16, 32)
  assert loading.batch_buckets(12) == (1, 2, 4, 8, 12) and loading.batch_buckets(1) == (1,)
  assert [loading.padded_batch_size(n, 12) for n in (1, 2, 3, 5, 8, 9, 12)] == [1, 2, 4, 8, 8, 12, 12]


def test_small_calls_run_small_batches_with_the_same_outputs(tiny_run):
  """One image or text runs a batch of one (not 32 or 256), equal to its row in a full batch; every call size
  from 1 to 9 compiles only the bucketed sizes."""
  model = rsvlm_jax.load(tiny_run)
  images = _images(9)
  full = model.encode_images(images[:8], batch_size=8)
  assert _sizes(model, "encode_images") == {8}
  one = model.encode_images(images[3], batch_size=8)
  assert one.shape == (1, model.model.embed_dim) and _sizes(model, "encode_images") == {1, 8}
  np.testing.assert_allclose(one[0], full[3], atol=1e-5, rtol=0)
  for n in range(1, 10):
    np.testing.assert_allclose(model.encode_images(images[:n], batch_size=8)[:8], full[:n], atol=1e-5, rtol=0)
  assert _sizes(model, "encode_images") == {1, 2, 4, 8}  # 9 = 8 + 1.
  assert sum(model.compiles.summary().values()) <= 4 + 5  # Image and (below) text shapes, once each.

  texts = ["a port with many ships", "a green field", "dense residential area", "an airport", "a beach"]
  all_t = model.encode_texts(texts)
  assert _sizes(model, "encode_texts") == {8}  # 5 texts: a batch of 8, not the default maximum of 256.
  for i, text in enumerate(texts):
    np.testing.assert_allclose(model.encode_texts(text)[0], all_t[i], atol=1e-5, rtol=0)
  np.testing.assert_allclose(model.encode_texts(texts, batch_size=2), all_t, atol=1e-5, rtol=0)
  assert _sizes(model, "encode_texts") == {1, 2, 8}
  assert model.encode_texts([]).shape == (0, model.model.embed_dim)
  with pytest.raises(ValueError, match="batch_size must be >= 1"):
    model.encode_images(images, batch_size=0)


def test_one_image_of_any_kind(tiny_run, tmp_path):
  """A path (str or os.PathLike), a PIL image or an [H, W, 3] array is one image, not a list of them."""
  model = rsvlm_jax.load(tiny_run)
  image = _images(1)[0]
  path = str(tmp_path / "x.png")
  Image.fromarray(image).save(path)
  want = model.encode_images([image])
  for one in (path, pathlib.Path(path), Image.fromarray(image), image, image[None]):
    np.testing.assert_allclose(model.encode_images(one), want, atol=1e-6, rtol=0)
  assert model.caption(path) == model.caption([image]) and len(model.caption(Image.open(path))) == 1
  assert model.tokenize("one text").shape == (1, model.text_len)
  # Per-image sizes (what the caption tool passes), checked against the images.
  np.testing.assert_allclose(model.encode_images([image, image], resolution=[32, 32]), np.repeat(want, 2, 0),
                             atol=1e-5, rtol=0)
  with pytest.raises(ValueError, match="1 resolutions for 2 images"):
    model.encode_images([image, image], resolution=[32])


def test_load_logs_no_checkpoint_metadata_warning(tiny_run, caplog):
  """orbax's Checkpointer warned on every load that `state/_CHECKPOINT_METADATA` is missing (that file lies
  one level up, in the step's directory) and about the options of a read-only manager."""
  with caplog.at_level(logging.INFO):
    rsvlm_jax.load(tiny_run)
  text = "\n".join(r.getMessage() for r in caplog.records)
  assert "_CHECKPOINT_METADATA" not in text and "read_only=True, setting" not in text
  assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "orbax" in r.pathname], text


def test_a_config_that_builds_no_model_names_the_file(tiny_run, tmp_path):
  copy = str(tmp_path / "copy")
  shutil.copytree(tiny_run, copy)
  with open(os.path.join(copy, "config.json")) as f:
    config = json.load(f)
  config["model"]["image"]["variant"] = "nonsense/8"
  with open(os.path.join(copy, "config.json"), "w") as f:
    json.dump(config, f)
  # The config gate (at load) names the file and the key before any model is built.
  with pytest.raises(ValueError, match=re.escape(os.path.join(copy, "config.json")) + ": Config key "
                     "model.image.variant: Unknown ViT variant 'nonsense/8'"):
    rsvlm_jax.load(copy)
