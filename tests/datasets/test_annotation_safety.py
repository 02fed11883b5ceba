"""Annotations that must not build silently: paths leaving the image folder, an image in two splits,
empty sets, non-UTF-8 files, bracketed numbers that are not boxes, malformed boxes."""
import json
import logging
import shutil

import pytest
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats as cf
from rsvlm_datasets import rs_gpt4v_format as fmt

from tests.datasets.builder_helpers import DATASETS
from tests.datasets.builder_helpers import build as _build
from tests.datasets.builder_helpers import copy_dummy as _copy_dummy
from tests.datasets.builder_helpers import edit_json as _edit_json


def _set_filename(index, filename):
  return lambda d: d["images"][index].update(filename=filename)


# --------------------------------------------------------------------------- escaping paths


@pytest.mark.parametrize("filename", ["../../secret.jpg", "../../../x.jpg",
                                      "../../../../etc/passwd", "/etc/passwd",
                                      "sub/../../../secret.jpg"])
def test_karpathy_path_leaving_the_image_folder_is_refused(tmp_path, filename):
  m = _copy_dummy("rsicd", tmp_path)
  shutil.copy(m / "RSICD_images" / "beach_3.jpg", tmp_path / "secret.jpg")  # m/RSICD_images/../../
  _edit_json(m / "dataset_rsicd.json", _set_filename(3, filename))
  with pytest.raises(cf.BadRecordError, match=r"dataset_rsicd\.json: images\[3\] imgid=3 .*"
                     r"leaves the image folder"):
    _build("rsicd", "default", m, tmp_path / "d1")
  builder = _build("rsicd", "lenient", m, tmp_path / "d2")  # Counted, never read.
  assert builder.info.splits["train"].num_examples == 3
  [skipped] = builder.info.metadata["skipped_records"]
  assert skipped["record"].startswith("images[3] ")
  assert "leaves the image folder" in skipped["reason"]
  assert filename.encode() not in {ex["filename"] for ex in builder.as_data_source("train")}


def test_nwpu_class_leaving_the_image_folder_is_refused(tmp_path):
  m = _copy_dummy("nwpu_captions", tmp_path)
  _edit_json(m / "dataset_nwpu.json", lambda d: d.update({"../..": [dict(d["beach"][0])]}))
  with pytest.raises(cf.BadRecordError,
                     match=r"dataset_nwpu\.json: \.\./\.\.\[0\] .*leaves the image folder"):
    cf.parse_nwpu(m / "dataset_nwpu.json", m / "NWPU_images", cf.RecordPolicy())


def test_rs_gpt4v_path_leaving_the_images_folder_is_refused(tmp_path):
  m = _copy_dummy("rs_gpt4v", tmp_path)
  shutil.copy(m / "images" / "UCM-Captions" / "1.tif", tmp_path / "secret.tif")  # m/images/../../
  with (m / "test" / "UCM-Captions.jsonl").open("a") as f:
    f.write(json.dumps({"question_id": 9, "image": "../../secret.tif", "text": "Describe."}))
    f.write("\n")
    f.write(json.dumps({"question_id": 9, "answer": "A secret."}) + "\n")
  with pytest.raises(cf.BadRecordError, match=r"UCM-Captions\.jsonl: line 7 question_id='9': "
                     r"image path '\.\./\.\./secret\.tif' leaves the image folder"):
    _build("rs_gpt4v", "default", m, tmp_path / "d1")
  builder = _build("rs_gpt4v", "lenient", m, tmp_path / "d2")
  assert builder.info.splits["test"].num_examples == 8
  skipped = builder.info.metadata["skipped_records"]
  assert [s["record"] for s in skipped] == ["line 7 question_id='9'"]


# --------------------------------------------------------------------------- one image, two splits


def test_karpathy_image_in_two_splits_names_file_and_both_splits(tmp_path):
  m = _copy_dummy("rsicd", tmp_path)
  _edit_json(m / "dataset_rsicd.json", _set_filename(8, "airport_1.jpg"))  # Test uses train image.
  with pytest.raises(cf.BadRecordError, match=r"images\[8\] imgid=8 filename='airport_1\.jpg': "
                     r"image airport_1\.jpg is in both train \(images\[0\] .*\) and test"):
    _build("rsicd", "default", m, tmp_path / "d1")
  builder = _build("rsicd", "lenient", m, tmp_path / "d2")
  assert builder.info.splits["test"].num_examples == 2
  assert builder.info.splits["train"].num_examples == 4


def test_rs_gpt4v_test_image_that_is_a_train_image(tmp_path):
  m = _copy_dummy("rs_gpt4v", tmp_path)
  with (m / "test" / "DIOR-RSVG.jsonl").open("a") as f:
    f.write(json.dumps({"question_id": "r3", "image": "DIOR-RSVG/00123.jpg", "text": "Locate it."}))
    f.write("\n" + json.dumps({"question_id": "r3", "answer": "{<1><2><3><4>}"}) + "\n")
  with pytest.raises(cf.BadRecordError, match=r"DIOR-RSVG\.jsonl: line 5 question_id='r3': image "
                     r"DIOR-RSVG/00123\.jpg is in both train \(.*\[3\] id='rsvg_123'\) and test"):
    _build("rs_gpt4v", "default", m, tmp_path / "d")


# --------------------------------------------------------------------------- empty sets


def test_empty_images_list_is_an_error_naming_the_file(tmp_path):
  m = _copy_dummy("rsicd", tmp_path)
  (m / "dataset_rsicd.json").write_text('{"images": []}')
  for config in ("default", "lenient"):
    with pytest.raises(cf.BadRecordError, match=r"dataset_rsicd\.json: the 'images' list is empty"):
      _build("rsicd", config, m, tmp_path / "d")
    assert not tfds.builder(f"rsicd/{config}", data_dir=tmp_path / "d").is_prepared()


def test_lenient_build_with_every_record_skipped_is_an_error(tmp_path):
  m = _copy_dummy("rsicd", tmp_path)
  _edit_json(m / "dataset_rsicd.json", lambda d: [e.pop("split") for e in d["images"]])
  with pytest.raises(cf.BadRecordError,
                     match=r"dataset_rsicd\.json: no usable records \(10 skipped\)"):
    _build("rsicd", "lenient", m, tmp_path / "d")


def test_rs_gpt4v_empty_files_are_errors_naming_them(tmp_path):
  (tmp_path / "a.json").write_text("[]")
  with pytest.raises(cf.BadRecordError,
                     match=r"a\.json: the list of conversation records is empty"):
    fmt.parse_train_json(tmp_path / "a.json", cf.RecordPolicy(True))
  (tmp_path / "UCM-Captions.jsonl").write_text("\n")
  with pytest.raises(cf.BadRecordError, match=r"UCM-Captions\.jsonl: empty file"):
    fmt.parse_test_jsonl(tmp_path / "UCM-Captions.jsonl", cf.RecordPolicy(True))


# --------------------------------------------------------------------------- encodings


def test_latin1_annotation_files_are_errors_naming_them(tmp_path):
  m = _copy_dummy("rsicd", tmp_path)
  path = m / "dataset_rsicd.json"
  path.write_bytes(path.read_text().replace("airport", "aéroport").encode("latin-1"))
  with pytest.raises(cf.BadRecordError, match=r"dataset_rsicd\.json: not UTF-8 text .*re-save"):
    _build("rsicd", "lenient", m, tmp_path / "d")
  jsonl = tmp_path / "Sydney-Captions.jsonl"
  jsonl.write_bytes('{"question_id": 1, "image": "1.tif", "text": "Décris."}\n'.encode("latin-1"))
  with pytest.raises(cf.BadRecordError, match=r"Sydney-Captions\.jsonl: not UTF-8 text"):
    fmt.parse_test_jsonl(jsonl, cf.RecordPolicy(True))


# --------------------------------------------------------------------------- boxes


@pytest.mark.parametrize("instruction, answer, source, task, boxes", [
    ("In which years were the images taken?", "(1990, 2000, 2010, 2020)", "RSIVQA", "vqa", 0),
    ("What are the counts?", "[3, 5, 1, 2]", "FloodNet", "vqa", 0),
    ("Where is the red car?", "[0.1, 0.2, 0.3, 0.4]", "", "grounding", 1),
    ("Where is the ship?", "[4, 8, 20, 30]", "DIOR-RSVG", "grounding", 1),
    ("Give the coordinates of the ship.", "[4, 8, 20, 30]", "misc", "grounding", 1),
    ("Where is the plane?", "{<10><20><35><60>}", "", "grounding", 1),
])
def test_only_grounding_records_have_boxes(instruction, answer, source, task, boxes):
  record = fmt.QARecord("k", "x.png", source, instruction, answer, "f.jsonl", "line 1")
  assert fmt.detect_task(instruction, answer, source) == task
  assert len(fmt.record_boxes(record, (32, 64))) == boxes


def test_malformed_boxes():
  assert fmt.malformed_boxes("at [0.1, 0.2, 0.3] and {<1><2><3>} or <box>(1,2)</box>") == [
      "[0.1, 0.2, 0.3]", "{<1><2><3>}", "<box>(1,2)</box>"]
  valid = "{<10><20><30><40>|<45>} <box>(1,2),(3,4)</box> (5, 6) [1, 2, 3, 4]"
  assert fmt.malformed_boxes(valid) == []


def test_rs_gpt4v_strict_build_keeps_number_lists_and_counts_malformed_boxes(tmp_path, caplog):
  m = _copy_dummy("rs_gpt4v", tmp_path)
  with (m / "test" / "RSVQA-LR.jsonl").open("a") as f:
    for row in ({"question_id": 12, "image": "RSVQA-LR/test_7.png", "text": "Which years?"},
                {"question_id": 12, "answer": "(1990, 2000, 2010, 2020)"},
                {"question_id": 13, "image": "RSVQA-LR/test_7.png", "text": "Locate the road."},
                {"question_id": 13, "answer": "[0.1, 0.2, 0.3] or {<10><20><30><40>}"}):
      f.write(json.dumps(row) + "\n")
  with caplog.at_level(logging.WARNING):
    builder = _build("rs_gpt4v", "default", m, tmp_path / "d")
  examples = {ex["answer"]: ex for ex in builder.as_data_source("test")}
  years = examples[b"(1990, 2000, 2010, 2020)"]
  assert fmt.TASKS[years["task"]] == "vqa" and len(years["boxes"]) == 0
  road = examples[b"[0.1, 0.2, 0.3] or {<10><20><30><40>}"]
  assert fmt.TASKS[road["task"]] == "grounding" and len(road["boxes"]) == 1
  reloaded = tfds.builder("rs_gpt4v/default", data_dir=tmp_path / "d")
  assert reloaded.info.metadata["malformed_boxes"] == [
      {"file": str(m / "test" / "RSVQA-LR.jsonl"), "record": "line 7 question_id='13'",
       "text": "[0.1, 0.2, 0.3]"}]
  assert "Malformed box (not used)" in caplog.text and "[0.1, 0.2, 0.3]" in caplog.text
