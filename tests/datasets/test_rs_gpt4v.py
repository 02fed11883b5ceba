"""RS-GPT4V builder: TFDS's harness on the dummy data, the task of each row, bad records named and counted."""
import collections
import json

import pytest
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats as cf
from rsvlm_datasets import rs_gpt4v_format as fmt
from rsvlm_datasets.rs_gpt4v import rs_gpt4v_dataset_builder
from tests.datasets import builder_helpers

DUMMY = rs_gpt4v_dataset_builder.Builder.code_path.parent / "dummy_data"


class RsGpt4vTest(tfds.testing.DatasetBuilderTestCase):
  """Config `default`."""
  DATASET_CLASS = rs_gpt4v_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
  SPLITS = {"train": 12, "test": 8}


class RsGpt4vCaptionsTest(tfds.testing.DatasetBuilderTestCase):
  """Config `captions`."""
  DATASET_CLASS = rs_gpt4v_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["captions"]
  SPLITS = {"train": 2, "test": 3}


def test_every_task_of_the_mixture_is_a_row_feature_read_without_decoding_images(tmp_path):
  builder = builder_helpers.build("rs_gpt4v", "default", DUMMY, tmp_path)
  got = {}
  for split in ("train", "test"):
    source = builder.as_data_source(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    rows = [source[i] for i in range(len(source))]
    assert all(isinstance(r["image"], bytes) for r in rows)  # Still encoded.
    got[split] = collections.Counter((fmt.TASKS[r["task"]], int(r["turn"])) for r in rows)
  assert got["train"] == {("caption", 0): 2, ("description", 0): 1, ("vqa", 0): 2, ("vqa", 1): 2,
                          ("grounding", 0): 1, ("grounding", 1): 1, ("other", 0): 1, ("conversation", 0): 1,
                          ("followup", 1): 1}
  assert got["test"] == {("caption", 0): 4, ("vqa", 0): 2, ("grounding", 0): 2}
  assert builder.info.metadata["task_counts"]["test"] == {"caption": 4, "vqa": 2, "grounding": 2}
  types = {r["instruction"]: r["type"] for r in builder.as_data_source(split="test")}
  assert types[b"How many buildings are there?"] == b"count" and types[b"Describe the image."] == b""


def test_explicit_task_field_wins_and_a_later_conversation_turn_is_a_followup(tmp_path):
  path = tmp_path / "t.json"
  path.write_text(json.dumps([{"id": "a", "image": "x.png", "task": "Complex-Reasoning", "conversations": [
      {"from": "human", "value": "Is it a port?"}, {"from": "gpt", "value": "yes"},
      {"from": "human", "value": "Why?"}, {"from": "gpt", "value": "Piers."}]}]))
  records = fmt.parse_train_json(path, cf.RecordPolicy())
  assert [fmt.record_task(r) for r in records] == ["conversation", "followup"]


def test_test_rows_task_and_type_from_either_row_and_named_once_when_bad(tmp_path):
  path = tmp_path / "RSVQA-LR.jsonl"
  rows = [{"question_id": 1, "image": "a.png", "text": "Is there a road?", "type": "presence"},
          {"question_id": 1, "answer": "yes", "task": "VQA"},
          {"question_id": 2, "image": "a.png", "text": "Is it urban?"}, {"question_id": 2, "answer": "no", "task": "x"},
          {"question_id": 3, "image": "a.png", "text": "Any water?", "type": "presence"},
          {"question_id": 3, "answer": "no", "type": "count"}]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  policy = cf.RecordPolicy(skip_bad_records=True)
  [record] = fmt.parse_test_jsonl(path, policy)
  assert (record.key, record.task, record.type, fmt.record_task(record)) == ("RSVQA-LR/1", "vqa", "presence", "vqa")
  assert [(s["record"], s["reason"].split(" (")[0]) for s in policy.skipped] == [
      ("line 3 question_id='2'", "unknown task 'x'"),
      ("line 5 question_id='3'", "question and answer rows disagree on the task [] or the type ['count', 'presence']")]
  assert "(answer row, line 4)" in policy.skipped[0]["reason"]
  assert policy.counts == {"unknown task": 1, "question and answer rows disagree on the task or the type": 1}


def _add_bad_records(m, only=None):
  """One of each (or only the one named): an answer without its question, an unknown task, an unknown question
  type, a box outside the image."""
  if only in (None, "answer"):
    with (m / "test" / "DIOR-RSVG.jsonl").open("a") as f:
      f.write(json.dumps({"question_id": "r9", "answer": "{<1><2><3><4>}"}) + "\n")
  ask = {"from": "human", "value": "<image>\nWhere is the ship?"}
  bad = [{"id": "x_task", "image": "DIOR-RSVG/00123.jpg", "task": "segmentation", "conversations": [
              ask, {"from": "gpt", "value": "a mask"}]},
         {"id": "x_type", "image": "DIOR-RSVG/00123.jpg", "type": 3, "conversations": [
              ask, {"from": "gpt", "value": "{<10><20><35><60>}"}]},
         {"id": "x_box", "image": "DIOR-RSVG/00123.jpg", "conversations": [
              ask, {"from": "gpt", "value": "{<10><20><135><60>}"}]}]
  builder_helpers.edit_json(m / "train" / "rs_gpt4v_train.json",
                            lambda data: data.extend(r for r in bad if only in (None, r["id"])))


@pytest.mark.parametrize("only, match", [
    ("answer", r"DIOR-RSVG\.jsonl: line 5 question_id='r9': answer without question"),
    ("x_task", r"rs_gpt4v_train\.json: \[8\] id='x_task': unknown task 'segmentation' \(field 'task'"),
    ("x_type", r"rs_gpt4v_train\.json: \[8\] id='x_type': unknown question type 3 \(field 'type'"),
    ("x_box", r"rs_gpt4v_train\.json: \[8\] id='x_box': box \[10\.0, 20\.0, 135\.0, 60\.0\] .*outside the image"),
])
def test_a_bad_record_stops_the_strict_build_naming_file_and_record(tmp_path, only, match):
  m = builder_helpers.copy_dummy("rs_gpt4v", tmp_path)
  _add_bad_records(m, only)
  with pytest.raises(cf.BadRecordError, match=match):
    builder_helpers.build("rs_gpt4v", "default", m, tmp_path / "tfds")


def test_lenient_build_skips_bad_records_and_counts_them_by_reason(tmp_path):
  m = builder_helpers.copy_dummy("rs_gpt4v", tmp_path)
  _add_bad_records(m)
  builder = builder_helpers.build("rs_gpt4v", "lenient", m, tmp_path / "tfds")
  assert builder.info.splits["train"].num_examples == 12 and builder.info.splits["test"].num_examples == 8
  reloaded = tfds.builder("rs_gpt4v/lenient", data_dir=tmp_path / "tfds")
  assert reloaded.info.metadata["skipped_counts"] == {"answer without question": 1, "unknown task": 1,
                                                      "unknown question type": 1, "box outside the image": 1}
  assert sorted(s["record"] for s in reloaded.info.metadata["skipped_records"]) == [
      "[10] id='x_box'", "[8] id='x_task'", "[9] id='x_type'", "line 5 question_id='r9'"]


if __name__ == "__main__":
  tfds.testing.test_main()
