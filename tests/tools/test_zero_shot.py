"""Zero-shot scene classification: equal to open_clip's own zero-shot computation on converted random weights;
the CLI on a class-folder set and a TFDS set; the evaluator in a run's evals."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import rsvlm_jax
from rsvlm_jax.evaluate import zero_shot
from rsvlm_jax.evaluate import zero_shot_templates
from rsvlm_jax.tools import zero_shot as zero_shot_tool

CLASSES = ("BaseballField", "dense_residential", "Port")


def _class_folder(root, per_class: int = 4, size: int = 32, seed: int = 0) -> str:
  rng = np.random.default_rng(seed)
  for k, name in enumerate(CLASSES):
    os.makedirs(os.path.join(root, name))
    for i in range(per_class):
      tint = np.zeros(3)
      tint[k] = 120  # Some class structure, so predictions are not all one class.
      pixels = np.clip(rng.integers(0, 136, (size, size + 8 * i, 3)) + tint, 0, 255).astype(np.uint8)
      Image.fromarray(pixels).save(os.path.join(root, name, f"{name}_{i}.png"))
  return str(root)


def test_class_names_and_templates():
  assert [zero_shot.class_name(c) for c in CLASSES] == ["baseball field", "dense residential", "port"]
  assert len(zero_shot_templates.load("georsclip")) == 100
  assert zero_shot_templates.load("remoteclip") == ["a satellite photo of {}."]
  with pytest.raises(ValueError, match="neither one of"):
    zero_shot_templates.load("nope")


def test_predictions_equal_open_clip_zero_shot(tmp_path):
  open_clip = pytest.importorskip("open_clip")
  import torch  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.tools import convert_open_clip  # pylint: disable=g-import-not-at-top
  from tests.convert import open_clip_models as ocm  # pylint: disable=g-import-not-at-top
  from open_clip.zero_shot_classifier import build_zero_shot_classifier  # pylint: disable=g-import-not-at-top
  model = ocm.random_clip(seed=3)
  out = convert_open_clip.convert(ocm.save_state_dict(model, str(tmp_path / "m.pt")), str(tmp_path / "clip"),
                                  model_config=ocm.write_arch(tmp_path))
  root = _class_folder(tmp_path / "aid")
  ours = zero_shot_tool.run(rsvlm_jax.load(out), f"folder:{root}", "georsclip", str(tmp_path / "zs.json"), batch=5)

  data = zero_shot.folder_dataset(root)
  templates = zero_shot_templates.load("georsclip")
  with torch.no_grad():
    weights = build_zero_shot_classifier(model, open_clip.get_tokenizer("ViT-B-32"), data.classnames, templates,
                                         num_classes_per_batch=None, device="cpu")
    transform = open_clip.image_transform(32, is_train=False)
    images = torch.stack([transform(Image.open(p)) for p in data.ids])
    logits = 100.0 * model.encode_image(images, normalize=True) @ weights
  theirs = logits.argmax(-1).numpy()
  assert [r["pred"] for r in ours["per_image"]] == [data.classnames[i] for i in theirs]
  top5 = min(5, len(CLASSES))
  assert ours["top1"] == pytest.approx(100.0 * (theirs == data.labels).mean())
  in_top5 = (np.argsort(-logits.numpy(), -1)[:, :top5] == data.labels[:, None]).any(-1)
  assert ours["top5"] == pytest.approx(100.0 * in_top5.mean())
  assert len(set(theirs.tolist())) > 1  # Not a degenerate all-one-class check.


def test_cli_on_a_class_folder(tiny_run, tmp_path):
  root = _class_folder(tmp_path / "aid", per_class=2)
  out = str(tmp_path / "out" / "aid.json")
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  run = subprocess.run([sys.executable, "-m", "rsvlm_jax.tools.zero_shot", "--model", tiny_run, "--dataset",
                        f"folder:{root}", "--templates", "remoteclip", "--out", out], capture_output=True, text=True,
                       env=env, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  with open(out) as f:
    result = json.load(f)
  assert set(result) >= {"top1", "top5", "per_class", "per_image"}
  assert sorted(result["per_class"]) == ["baseball field", "dense residential", "port"]
  assert len(result["per_image"]) == 6 and set(result["per_image"][0]) == {"image", "label", "pred"}
  assert result["top5"] == 100.0 and 0.0 <= result["top1"] <= 100.0  # 3 classes: the top 5 always hold the label.
  correct = sum(r["label"] == r["pred"] for r in result["per_image"])
  assert result["top1"] == pytest.approx(100.0 * correct / 6)
  with Image.open(os.path.join(tmp_path, "out", "aid.png")) as png:
    assert png.size[0] > 60 and png.size[1] > 60
  bad = subprocess.run([sys.executable, "-m", "rsvlm_jax.tools.zero_shot", "--model", tiny_run, "--dataset",
                        "nope:x", "--out", out], capture_output=True, text=True, env=env, check=False)
  assert bad.returncode == 2 and "expected folder:PATH or tfds:NAME" in bad.stderr


def test_tfds_dataset_and_the_evaluator(tiny_run, tiny_data_dir, tmp_path):
  """A TFDS classification set (built here) through tfds:NAME, and evals.zero_shot in a run's evaluation."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from tests.fixtures import tiny_config  # pylint: disable=g-import-not-at-top
  from tests.tools import tiny_classes  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / "tfds")
  tiny_classes.TinyClasses(data_dir=data_dir, file_format="array_record").download_and_prepare()
  model = rsvlm_jax.load(tiny_run)
  result = zero_shot_tool.run(model, "tfds:tiny_classes", "remoteclip", str(tmp_path / "t.json"), data_dir=data_dir)
  assert result["num_images"] == 9 and sorted(result["per_class"]) == ["baseball field", "dense residential", "port"]

  config = tiny_config(tiny_data_dir, "steps=2,ckpt_every=2", num_devices=1)
  config.evals = {"zero_shot": {"dataset": "tfds:tiny_classes", "data_dir": data_dir, "templates": "remoteclip",
                                "batch_size": 4}}
  metrics = job.run(config, tiny_run, mode="eval")
  assert metrics["zero_shot"]["top1"] == pytest.approx(result["top1"])
