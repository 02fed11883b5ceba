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
  assert ours["top1"] == pytest.approx(100.0 * (theirs == data.labels).mean())
  assert ours["top5"] is None  # 3 classes: the label is always among the top 5, so it is not reported.
  assert ours["templates"] == "rs_ensemble"  # "georsclip" is its deprecated name.
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
  # 3 classes: the top 5 always hold the label, so top-5 is null with a note rather than 100%.
  assert result["top5"] is None and any("top5 not reported" in n for n in result["notes"])
  correct = sum(r["label"] == r["pred"] for r in result["per_image"])
  assert result["top1"] == pytest.approx(100.0 * correct / 6)
  recalls = [sum(r["label"] == r["pred"] for r in result["per_image"] if r["label"] == c) / 2
             for c in result["per_class"]]
  assert result["mean_per_class_recall"] == pytest.approx(100.0 * np.mean(recalls))
  assert f"top-1 {result['top1']:.2f}%  top-5 n/a" in run.stdout
  assert "orbax" not in run.stderr  # Library internals are quiet.
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


def test_cli_never_downloads_an_unbuilt_tfds_set(tmp_path):
  """An unbuilt catalog set: one line naming the set, the data_dir and the build command; exit 2; nothing
  written, before any model is loaded (the --model here does not exist)."""
  data_dir = tmp_path / "tfds"
  data_dir.mkdir()
  out = tmp_path / "out" / "ucm.json"
  run = subprocess.run([sys.executable, "-m", "rsvlm_jax.tools.zero_shot", "--model", str(tmp_path / "no_model"),
                        "--dataset", "tfds:uc_merced", "--data_dir", str(data_dir), "--out", str(out)],
                       capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}, check=False)
  assert run.returncode == 2, run.stderr[-3000:]
  assert (f"zero_shot: error: tfds:uc_merced is not built in {data_dir} (zero-shot never downloads a dataset); "
          f"build it first with: tfds build uc_merced --data_dir={data_dir} --file_format=array_record") in run.stderr
  assert "Traceback" not in run.stderr
  assert not list(data_dir.iterdir()) and not (tmp_path / "out").exists()
