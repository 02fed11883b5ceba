"""Zero-shot inputs, no model: class folders (hidden, empty, single), TFDS sets never downloaded, template files,
and the report's top-5 and mean per-class recall."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from PIL import Image

from rsvlm_jax.evaluate import zero_shot
from rsvlm_jax.evaluate import zero_shot_templates
from rsvlm_jax.tools import cli
from rsvlm_jax.tools import zero_shot as zero_shot_tool
from tests.fixtures import unwritable_dir


def _image(path) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(path)


def _folders(root, spec: dict[str, int]) -> str:
  """root/NAME/NAME_i.png for each NAME: count (0: an empty folder)."""
  for name, n in spec.items():
    os.makedirs(root / name, exist_ok=True)
    for i in range(n):
      _image(str(root / name / f"{name}_{i}.png"))
  return str(root)


def test_hidden_folders_and_files_are_skipped_and_noted(tmp_path):
  root = _folders(tmp_path / "aid", {"Port": 2, "Farmland": 1, ".ipynb_checkpoints": 1})
  _image(os.path.join(root, "Port", ".ipynb_checkpoints", "Port_0-checkpoint.png"))
  with open(os.path.join(root, "Port", "._Port_0.png"), "wb") as f:
    f.write(b"\x00\x05\x16\x07 AppleDouble")  # macOS resource fork: not an image.
  data = zero_shot.dataset(f"folder:{root}")
  assert data.classnames == ["farmland", "port"]
  assert sorted(os.path.basename(p) for p in data.ids) == ["Farmland_0.png", "Port_0.png", "Port_1.png"]
  assert any(".ipynb_checkpoints" in n for n in data.notes)
  assert any("2 hidden file(s) and folder(s)" in n for n in data.notes)


def test_an_empty_class_folder_is_refused_unless_dropped_or_kept(tmp_path):
  root = _folders(tmp_path / "aid", {"Port": 2, "Farmland": 1, "Desert": 0, "Beach": 0})
  with pytest.raises(ValueError, match=r"2 class folder\(s\) hold no images: Beach, Desert.*--empty_classes"):
    zero_shot.dataset(f"folder:{root}")
  dropped = zero_shot.dataset(f"folder:{root}", empty_classes="drop")
  assert dropped.classnames == ["farmland", "port"] and dropped.labels.tolist() == [0, 1, 1]
  assert any("dropped" in n and "Beach, Desert" in n for n in dropped.notes)
  kept = zero_shot.dataset(f"folder:{root}", empty_classes="keep")
  assert kept.classnames == ["beach", "desert", "farmland", "port"] and kept.labels.tolist() == [2, 3, 3]
  logits = np.eye(4, dtype=np.float32)[[2, 0, 3]]  # farmland right; one port image predicted "beach".
  result = zero_shot.report(logits, kept.labels, kept.classnames, kept.ids, 1, kept.notes)
  assert result["per_class"] == {"beach": None, "desert": None, "farmland": 100.0, "port": 50.0}
  assert result["mean_per_class_recall"] == pytest.approx(75.0)  # Over the classes with images only.
  with pytest.raises(ValueError, match="expected one of error, drop, keep"):
    zero_shot.dataset(f"folder:{root}", empty_classes="ignore")


def test_one_class_is_an_error(tmp_path):
  root = _folders(tmp_path / "one", {"Port": 2})
  with pytest.raises(ValueError, match="1 class .*needs at least 2 classes"):
    zero_shot.dataset(f"folder:{root}")
  root = _folders(tmp_path / "two", {"Port": 2, "Desert": 0})
  with pytest.raises(ValueError, match="needs at least 2 classes"):
    zero_shot.dataset(f"folder:{root}", empty_classes="drop")


def test_an_unbuilt_tfds_set_is_never_downloaded(tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")

  def no_download(*args, **kwargs):
    raise AssertionError("zero-shot tried to download a dataset")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
  monkeypatch.setattr(tfds, "data_source", no_download)
  data_dir = tmp_path / "tfds"
  data_dir.mkdir()
  with pytest.raises(FileNotFoundError) as e:
    zero_shot.dataset("tfds:uc_merced", str(data_dir))
  assert f"tfds:uc_merced is not built in {data_dir}" in str(e.value)
  assert f"tfds build uc_merced --data_dir={data_dir} --file_format=array_record" in str(e.value)
  with pytest.raises(FileNotFoundError, match=f"python -m rsvlm_jax.build_dataset synthetic_scenes/demo "
                                              f"--data_dir={data_dir}"):
    zero_shot.dataset("tfds:synthetic_scenes/demo", str(data_dir))
  with pytest.raises(ValueError, match="neither a TFDS catalog dataset nor built in"):
    zero_shot.dataset("tfds:no_such_set_xyz", str(data_dir))
  assert not list(data_dir.iterdir())


def test_a_tfrecord_build_is_named(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  from tests.tools import tiny_classes  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / "tfds")
  tiny_classes.TinyClasses(data_dir=data_dir, file_format="tfrecord").download_and_prepare()
  with pytest.raises(ValueError, match="stored as tfrecord.*rebuild it as array_record"):
    zero_shot.dataset("tfds:tiny_classes", data_dir)


def test_report_top5_and_mean_per_class_recall():
  # 3 classes with 3, 1 and 2 images; right: 2 of 3, 1 of 1, 1 of 2 -> recalls 2/3, 1, 1/2.
  labels = np.array([0, 0, 0, 1, 2, 2])
  pred = np.array([0, 1, 0, 1, 2, 0])
  logits = np.eye(3, dtype=np.float32)[pred]
  result = zero_shot.report(logits, labels, ["a", "b", "c"], [str(i) for i in range(6)], 1)
  assert result["top1"] == pytest.approx(100.0 * 4 / 6)
  assert result["mean_per_class_recall"] == pytest.approx(100.0 * (2 / 3 + 1 + 1 / 2) / 3)
  assert result["top5"] is None and any("top5 not reported" in n for n in result["notes"])
  # Six classes: top-5 is reported; the label of image 0 is ranked last.
  logits = np.tile(np.arange(6, 0, -1, dtype=np.float32), (2, 1))  # Class 0 first, class 5 last.
  result = zero_shot.report(logits, np.array([5, 1]), list("abcdef"), ["x", "y"], 1)
  assert result["top5"] == pytest.approx(50.0) and result["top1"] == 0.0
  assert result["notes"] == ["4 class(es) without images: per_class null, left out of mean_per_class_recall"]
  assert result["per_class"]["f"] == 0.0 and result["per_class"]["a"] is None


@pytest.mark.parametrize("line,message", [
    ("a photo of {c}.", r"placeholder \{c\}"),
    ("a {} next to a {}.", "2 '{}' placeholders"),
    ("a photo of {0}.", r"placeholder \{0\}"),
    ("a photo of a {:>9}.", r"placeholder \{:>9\}"),
    ("a {photo} of {}.", r"placeholder \{photo\}"),
    ("a } photo of {}.", "Single '}'"),
    ("a { photo of {}.", "'{'"),
    ("a photo of it.", "0 '{}' placeholders"),
])
def test_bad_templates_name_the_file_and_line(tmp_path, line, message):
  path = tmp_path / "t.txt"
  path.write_text(f"# comment\na satellite photo of {{}}.\n\n{line}\n", encoding="utf-8")
  with pytest.raises(ValueError, match=f"^{path}:4: .*{message}"):
    zero_shot_templates.load(str(path))


def test_template_files_literal_braces_and_encoding(tmp_path):
  good = tmp_path / "good.txt"
  good.write_bytes("\ufeffa photo of {} {{with braces}}.\nune photo aérienne de {}.\n".encode("utf-8"))
  temps = zero_shot_templates.load(str(good))
  assert [t.format("x") for t in temps] == ["a photo of x {with braces}.", "une photo aérienne de x."]
  latin1 = tmp_path / "latin1.txt"
  latin1.write_bytes("a photo of {}.\nune photo aérienne de {}.\n".encode("latin-1"))
  with pytest.raises(ValueError, match=f"^{latin1}:2: not UTF-8 \\(byte 0xe9 at column 12\\)"):
    zero_shot_templates.load(str(latin1))


def test_georsclip_is_a_deprecated_name_of_the_own_ensemble(caplog):
  with caplog.at_level(logging.WARNING):
    temps = zero_shot_templates.load("georsclip")
  assert temps == zero_shot_templates.load("rs_ensemble") and len(temps) == 100
  assert "deprecated name of rs_ensemble" in caplog.text and "not GeoRSCLIP's" in caplog.text
  assert zero_shot_templates.canonical_name("georsclip") == "rs_ensemble"
  assert "georsclip" not in zero_shot_templates.TEMPLATES


def test_outputs_are_checked_before_anything_else(tmp_path):
  root = _folders(tmp_path / "aid", {"Port": 1, "Farmland": 1})
  (tmp_path / "adir").mkdir()
  with pytest.raises(cli.UserError, match="--out=.*adir is a directory"):
    zero_shot_tool.prepare(f"folder:{root}", "remoteclip", str(tmp_path / "adir"))
  with pytest.raises(cli.UserError, match="--confusion=.*is a directory"):
    zero_shot_tool.prepare(f"folder:{root}", "remoteclip", str(tmp_path / "a.json"), confusion=str(tmp_path / "adir"))
  (tmp_path / "file").write_text("")
  with pytest.raises(cli.UserError, match="is a file, not a folder"):
    zero_shot_tool.prepare(f"folder:{root}", "remoteclip", str(tmp_path / "file" / "sub" / "a.json"))
  ro = unwritable_dir(tmp_path)
  if ro:
    with pytest.raises(cli.UserError, match="cannot write"):
      zero_shot_tool.prepare(f"folder:{root}", "remoteclip", os.path.join(ro, "new", "a.json"))
  inputs = zero_shot_tool.prepare(f"folder:{root}", "georsclip", str(tmp_path / "new" / "a.json"), limit=1)
  assert inputs.confusion == str(tmp_path / "new" / "a.png") and inputs.templates_name == "rs_ensemble"
  assert len(inputs.data.ids) == 1 and not (tmp_path / "new").exists()  # Folders are made only when writing.


def test_confusion_title():
  result = {"dataset": "folder:/data/AID", "top1": 85.0, "num_images": 6, "num_classes": 3}
  assert zero_shot_tool.title(result) == "folder:/data/AID | top-1: 85.00% | 6 images, 3 classes"


def test_the_run_report_table_shows_a_missing_top5():
  from rsvlm_jax.evaluate import report  # pylint: disable=g-import-not-at-top
  table = report.table({"num_test_images": 6, "zero_shot": {"top1": 50.0, "top5": None}})
  assert "50.00 / n/a" in table
