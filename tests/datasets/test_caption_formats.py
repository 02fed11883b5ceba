"""Bad input, box parsing, task detection and RSICD/RSITMD dedup of the caption-set builders."""
import json
import logging
import shutil

from etils import epath
import pytest
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats as cf
from rsvlm_datasets import rs_gpt4v_format as fmt

from tests.datasets.builder_helpers import DATASETS
from tests.datasets.builder_helpers import build as _build
from tests.datasets.builder_helpers import copy_dummy as _copy_dummy
from tests.datasets.builder_helpers import edit_json as _edit_json


# --------------------------------------------------------------------------- Karpathy / NWPU


@pytest.fixture
def rsicd(tmp_path):
  return _copy_dummy("rsicd", tmp_path)


def _parse_rsicd(m, skip=False):
  policy = cf.RecordPolicy(skip)
  return cf.parse_karpathy(m / "dataset_rsicd.json", m / "RSICD_images", policy), policy


def test_karpathy_clean(rsicd):
  records, policy = _parse_rsicd(rsicd)
  assert len(records) == 10 and not policy.skipped
  assert {r.split for r in records} == {"train", "validation", "test"}
  assert all(len(r.captions) == 5 for r in records)


def test_missing_image_names_file_and_record(rsicd):
  (rsicd / "RSICD_images" / "bridge_2.jpg").unlink()
  with pytest.raises(cf.BadRecordError) as e:
    _parse_rsicd(rsicd)
  msg = str(e.value)
  assert "dataset_rsicd.json" in msg and "imgid=1" in msg and "bridge_2.jpg" in msg
  assert "image not found" in msg


def test_missing_field_names_file_and_record(rsicd):
  _edit_json(rsicd / "dataset_rsicd.json", lambda d: d["images"][2].pop("split"))
  with pytest.raises(cf.BadRecordError, match=r"dataset_rsicd\.json: images\[2\] imgid=2 "
                     r"filename='00012\.jpg': missing field 'split'"):
    _parse_rsicd(rsicd)


def test_empty_caption_names_file_and_record(rsicd):
  _edit_json(rsicd / "dataset_rsicd.json",
             lambda d: d["images"][4]["sentences"][3].update(raw="  "))
  with pytest.raises(cf.BadRecordError, match=r"images\[4\] imgid=4 filename='farmland_1\.jpg': "
                     r"sentences\[3\] \(sentid=23\): empty 'raw'"):
    _parse_rsicd(rsicd)


def test_malformed_json_file_names_line(rsicd):
  (rsicd / "dataset_rsicd.json").write_text('{"images": [\n{"filename": "a.jpg",\n}]}')
  with pytest.raises(cf.BadRecordError, match=r"dataset_rsicd\.json:3:1: malformed JSON"):
    _parse_rsicd(rsicd, skip=True)  # Fatal even when lenient.


def test_lenient_counts_and_logs(rsicd, caplog):
  (rsicd / "RSICD_images" / "bridge_2.jpg").unlink()
  _edit_json(rsicd / "dataset_rsicd.json", lambda d: d["images"][5]["sentences"][0].pop("raw"))
  with caplog.at_level(logging.WARNING):
    records, policy = _parse_rsicd(rsicd, skip=True)
  assert len(records) == 8
  assert [s["record"] for s in policy.skipped] == [
      "images[5] imgid=5 filename='park_4.jpg'", "images[1] imgid=1 filename='bridge_2.jpg'"]
  assert all(s["file"].endswith("dataset_rsicd.json") for s in policy.skipped)
  assert "Skipping bad record" in caplog.text and "park_4.jpg" in caplog.text


def test_duplicate_imgid_and_unknown_split(rsicd):
  def edit(d):
    d["images"][3]["imgid"] = 0
    d["images"][6]["split"] = "restval"
  _edit_json(rsicd / "dataset_rsicd.json", edit)
  records, policy = _parse_rsicd(rsicd, skip=True)
  reasons = [s["reason"] for s in policy.skipped]
  assert len(records) == 8
  assert any("unknown split 'restval'" in r for r in reasons)
  assert any("duplicate image id '0'" in r for r in reasons)


def test_nwpu_missing_caption_field(tmp_path):
  m = _copy_dummy("nwpu_captions", tmp_path)
  _edit_json(m / "dataset_nwpu.json", lambda d: d["beach"][1].pop("raw_3"))
  with pytest.raises(cf.BadRecordError, match=r"dataset_nwpu\.json: beach\[1\] "
                     r"filename='beach_002\.jpg': missing field 'raw_3'"):
    cf.parse_nwpu(m / "dataset_nwpu.json", m / "NWPU_images", cf.RecordPolicy())
  records = cf.parse_nwpu(m / "dataset_nwpu.json", m / "NWPU_images", cf.RecordPolicy(True))
  assert len(records) == 9 and {r.class_name for r in records} == {"airplane", "beach"}


def test_class_from_filename():
  assert cf.class_from_filename("denseresidential_12.jpg") == "denseresidential"
  assert cf.class_from_filename("00012.jpg") == ""


def test_builder_strict_then_lenient_metadata(rsicd, tmp_path):
  (rsicd / "RSICD_images" / "port_2.jpg").write_bytes(b"not an image")
  _edit_json(rsicd / "dataset_rsicd.json", lambda d: d["images"][0]["sentences"][1].update(raw=""))
  with pytest.raises(cf.BadRecordError, match=r"images\[0\] imgid=0 filename='airport_1\.jpg'"):
    _build("rsicd", "default", rsicd, tmp_path / "d1")
  builder = _build("rsicd", "lenient", rsicd, tmp_path / "d2")
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 3, "validation": 3, "test": 2}
  reloaded = tfds.builder("rsicd/lenient", data_dir=tmp_path / "d2")
  skipped = reloaded.info.metadata["skipped_records"]
  assert [s["record"] for s in skipped] == ["images[0] imgid=0 filename='airport_1.jpg'",
                                            "images[8] imgid=8 filename='port_2.jpg'"]
  assert "unreadable image" in skipped[1]["reason"]


def test_strict_build_stops_on_an_unreadable_image_naming_its_path(rsicd, tmp_path):
  (rsicd / "RSICD_images" / "port_2.jpg").write_bytes(b"not an image")
  with pytest.raises(cf.BadRecordError, match=r"RSICD_images/port_2\.jpg: images\[8\] .*unreadable image"):
    _build("rsicd", "default", rsicd, tmp_path / "d")


# --------------------------------------------------------------------------- RSICD/RSITMD dedup


def test_drop_overlap_by_stem():
  recs = [cf.CaptionRecord(str(i), f, s, ("c",), "", epath.Path(f), "", "")
          for i, (f, s) in enumerate([("church_1.jpg", "test"), ("Port_2.jpg", "test"),
                                      ("church_1.jpg", "train")])]
  kept, dropped = cf.drop_overlap(recs, {"church_1", "port_2"})
  assert dropped == ["church_1.jpg", "Port_2.jpg"] and [r.split for r in kept] == ["train"]


def test_dedup_builders(tmp_path):
  for name, dropped in (("rsicd", ["church_1.jpg"]), ("rsitmd", ["bridge_2.tif"])):
    builder = _build(name, "dedup", DATASETS / name / "dummy_data", tmp_path / name)
    assert builder.info.splits["test"].num_examples == 2
    assert builder.info.metadata["dedup_dropped"] == dropped
    test_names = {ex["filename"] for ex in builder.as_data_source("test")}
    assert dropped[0].encode() not in test_names


def test_dedup_without_other_annotation_fails_clearly(rsicd, tmp_path):
  (rsicd / "dataset_RSITMD.json").unlink()
  with pytest.raises(FileNotFoundError,
                     match=r"'dedup' configs need rsitmd's dataset_RSITMD\.json"):
    _build("rsicd", "dedup", rsicd, tmp_path / "d")


def test_dedup_finds_sibling_folder(tmp_path):
  root = tmp_path / "manual"
  shutil.copytree(DATASETS / "rsicd" / "dummy_data", root / "rsicd")
  (root / "rsitmd").mkdir()
  (root / "rsicd" / "dataset_RSITMD.json").rename(root / "rsitmd" / "dataset_RSITMD.json")
  assert cf.find_annotation(epath.Path(root / "rsicd"), "dataset_RSITMD.json", "rsitmd") == (
      epath.Path(root / "rsitmd" / "dataset_RSITMD.json"))


# --------------------------------------------------------------------------- RS-GPT4V


def _jsonl(path, rows):
  path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
  return path


def test_jsonl_pairs_by_question_id(tmp_path):
  path = _jsonl(tmp_path / "UCM-Captions.jsonl", [
      {"question_id": 1, "image": "1.tif", "text": "<image>\nDescribe the image."},
      {"question_id": 2, "image": "2.tif", "question": "Is there a river?"},
      {"question_id": 2, "answer": "yes"}, {"question_id": 1, "answer": "A river."}])
  records = fmt.parse_test_jsonl(path, cf.RecordPolicy())
  assert [(r.key, r.source, r.instruction, r.answer) for r in records] == [
      ("UCM-Captions/1", "UCM-Captions", "Describe the image.", "A river."),
      ("UCM-Captions/2", "UCM-Captions", "Is there a river?", "yes")]


def test_jsonl_malformed_line_names_file_and_line(tmp_path):
  path = _jsonl(tmp_path / "Sydney-Captions.jsonl", [
      {"question_id": 1, "image": "1.tif", "text": "Describe."}, {"question_id": 1, "answer": "x"},
      '{"question_id": 2, "image": "2.tif", "text": \n'])
  with pytest.raises(cf.BadRecordError, match=r"Sydney-Captions\.jsonl: line 3: malformed JSON"):
    fmt.parse_test_jsonl(path, cf.RecordPolicy())
  policy = cf.RecordPolicy(skip_bad_records=True)
  assert len(fmt.parse_test_jsonl(path, policy)) == 1
  assert policy.skipped[0]["record"] == "line 3"


@pytest.mark.parametrize("rows, match", [
    ([{"question_id": 7, "image": "a.png", "text": "Why?"}],
     r"line 1 question_id='7': question without answer"),
    ([{"question_id": 7, "image": "a.png", "text": "Why?"}, {"question_id": 7, "answer": " "}],
     r"line 2 question_id='7': empty 'answer'"),
    ([{"question_id": 7, "text": "Why?"}], r"line 1 question_id='7': missing or invalid image"),
    ([{"image": "a.png", "text": "Why?"}], r"line 1 question_id=None: missing field question_id"),
    ([{"question_id": 7, "answer": "yes"}], r"line 1 question_id='7': answer without question"),
])
def test_jsonl_bad_rows(tmp_path, rows, match):
  path = _jsonl(tmp_path / "RSVQA-LR.jsonl", rows)
  with pytest.raises(cf.BadRecordError, match=r"RSVQA-LR\.jsonl: " + match):
    fmt.parse_test_jsonl(path, cf.RecordPolicy())


def test_train_conversations_and_aliases(tmp_path):
  path = tmp_path / "rs_gpt4v_train.json"
  path.write_text(json.dumps([
      {"id": "a", "image": "NWPU-Captions/x.jpg", "conversations": [
          {"from": "human", "value": "<image>\nDescribe the image."},
          {"from": "gpt", "value": "A."},
          {"from": "human", "value": "Is it sunny?"}, {"from": "gpt", "value": "yes"}]},
      {"id": "b", "image": ["y.jpg"], "messages": [
          {"role": "user", "content": "What is this?"}, {"role": "assistant", "text": "A port."}]},
      {"id": "c", "image": "z.jpg", "conversations": [{"from": "human", "value": "Hi <image>"}]},
      {"id": "d", "image": "z.jpg", "conversations": [
          {"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
      {"image": "z.jpg", "conversations": []},
  ]))
  policy = cf.RecordPolicy(skip_bad_records=True)
  records = fmt.parse_train_json(path, policy)
  assert [(r.key, r.source, r.instruction) for r in records] == [
      ("rs_gpt4v_train/a/0", "NWPU-Captions", "Describe the image."),
      ("rs_gpt4v_train/a/1", "NWPU-Captions", "Is it sunny?"),
      ("rs_gpt4v_train/b/0", "rs_gpt4v_train", "What is this?")]
  assert [(s["record"], s["reason"]) for s in policy.skipped] == [
      ("[2] id='c'", "odd number of turns (1): a question has no answer"),
      ("[3] id='d'", "turns 0,1 are gpt,human; expected human then gpt"),
      ("[4] id=None", "missing field id (one of ['id', 'question_id']; fields: "
                      "['conversations', 'image'])")]


def test_rs_gpt4v_lenient_build_records_skips(tmp_path):
  m = _copy_dummy("rs_gpt4v", tmp_path)
  (m / "images" / "RSVQA-LR" / "test_7.png").unlink()
  with (m / "test" / "UCM-Captions.jsonl").open("a") as f:
    f.write("{broken\n")
  with pytest.raises(cf.BadRecordError, match=r"UCM-Captions\.jsonl: line 7: malformed JSON"):
    _build("rs_gpt4v", "default", m, tmp_path / "d1")
  builder = _build("rs_gpt4v", "lenient", m, tmp_path / "d2")
  assert builder.info.splits["test"].num_examples == 6
  skipped = tfds.builder("rs_gpt4v/lenient", data_dir=tmp_path / "d2").info.metadata[
      "skipped_records"]
  assert [s["record"] for s in skipped] == [
      "line 7", "line 1 question_id='10'", "line 2 question_id='11'"]
  assert "image not found" in skipped[1]["reason"]


# --------------------------------------------------------------------------- boxes and tasks


@pytest.mark.parametrize("text, size, expected", [
    ("[0.1, 0.2, 0.5, 0.6]", None, [(0.2, 0.1, 0.6, 0.5)]),
    ("It is at {<10><20><30><40>}.", None, [(0.2, 0.1, 0.4, 0.3)]),
    ("{<10><20><30><40>|<45>}", None, [(0.2, 0.1, 0.4, 0.3)]),
    ("<box>(100,200),(300,400)</box>", None, [(0.2, 0.1, 0.4, 0.3)]),
    ("(8, 16, 24, 32) and [0, 0, 16, 8]", (32, 64), [(0.25, 0.25, 0.5, 0.75), (0, 0, 0.125, 0.5)]),
    ("There are 4 planes (yes) [1, 2] at 10, 20, 30, 40.", None, []),
])
def test_parse_boxes(text, size, expected):
  got = fmt.parse_boxes(text, size)
  assert len(got) == len(expected)
  for g, e in zip(got, expected):
    assert g == pytest.approx(e)


def test_box_scale_override_and_errors():
  [box] = fmt.parse_boxes("[10, 20, 30, 40]", bracket_scale="percent")
  assert box == pytest.approx((0.2, 0.1, 0.4, 0.3))
  with pytest.raises(ValueError, match="needs the image size"):
    fmt.parse_boxes("[10, 20, 30, 40]")
  with pytest.raises(ValueError, match="inverted"):
    fmt.parse_boxes("[0.5, 0.2, 0.1, 0.6]")
  with pytest.raises(ValueError, match="outside the image"):
    fmt.parse_boxes("[10, 20, 300, 40]", (100, 100))


@pytest.mark.parametrize("instruction, answer, source, task", [
    ("Describe the image in detail.", "Many planes.", "", "description"),
    ("Describe the image.", " ".join(["word"] * 40), "", "description"),
    ("Describe the image.", " ".join(["word"] * 39), "", "caption"),
    ("Why is the harbor busy?", " ".join(["word"] * 20), "", "conversation"),
    ("Why is the harbor busy?", " ".join(["word"] * 19), "", "vqa"),
    ("Tell me more.", "ok", "LLaVA-conversation", "conversation"),
    ("Write a short caption for this image.", "A port.", "", "caption"),
    ("What does this image show?", "A port.", "", "caption"),
    ("Is there a road?", "yes", "RSVQA-LR", "vqa"),
    ("How many buildings are there", "3", "", "vqa"),
    ("Where is the red car?", "[0.1, 0.2, 0.3, 0.4]", "", "grounding"),
    ("Output the bounding box of the ship.", "none", "", "grounding"),
    ("Describe the region {<1><2><3><4>}.", "A car.", "", "grounding"),
    ("Classify the scene.", "airport", "NWPU-Captions", "other"),
    ("Give a sentence for the picture.", "A farm.", "UCM-Captions", "caption"),
    ("Tell me something.", "ok", "misc", "other"),
])
def test_detect_task(instruction, answer, source, task):
  assert fmt.detect_task(instruction, answer, source) == task


def test_clean_instruction_keeps_line_breaks():
  assert fmt.clean_instruction("<image>\nPick one:\nA. port\nB. farm") == "Pick one:\nA. port\nB. farm"
  assert fmt.clean_instruction("What is this? <image>") == "What is this?"
