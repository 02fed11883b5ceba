"""RSVQA-LR / RSVQA-HR builders: TFDS's harness on the dummy data, binning, inactive records and bad records."""
import collections
import json

import pytest
import tensorflow_datasets as tfds

from rsvlm_datasets import rsvqa_format
from rsvlm_datasets.caption_formats import BadRecordError
from rsvlm_datasets.caption_formats import RecordPolicy
from rsvlm_datasets.rsvqa_hr import rsvqa_hr_dataset_builder
from rsvlm_datasets.rsvqa_lr import rsvqa_lr_dataset_builder
from tests.datasets import builder_helpers

LR_DUMMY = rsvqa_lr_dataset_builder.Builder.code_path.parent / "dummy_data"
HR_DUMMY = rsvqa_hr_dataset_builder.Builder.code_path.parent / "dummy_data"


class RsvqaLrAllTest(tfds.testing.DatasetBuilderTestCase):
  """Config `all`: one inactive train question left out."""
  DATASET_CLASS = rsvqa_lr_dataset_builder.Builder
  EXAMPLE_DIR = LR_DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["all"]
  SPLITS = {"train": 5, "validation": 2, "test": 3}


class RsvqaLrNonumTest(tfds.testing.DatasetBuilderTestCase):
  """Config `nonum`: without count questions."""
  DATASET_CLASS = rsvqa_lr_dataset_builder.Builder
  EXAMPLE_DIR = LR_DUMMY
  BUILDER_CONFIG_NAMES_TO_TEST = ["nonum"]
  SPLITS = {"train": 3, "validation": 1, "test": 2}


class RsvqaHrAllTest(tfds.testing.DatasetBuilderTestCase):
  """Config `all`, with the second test set (Philadelphia)."""
  DATASET_CLASS = rsvqa_hr_dataset_builder.Builder
  EXAMPLE_DIR = HR_DUMMY
  BUILDER_CONFIG_NAMES_TO_TEST = ["all"]
  SPLITS = {"train": 4, "validation": 2, "test": 2, "test_phili": 2}


class RsvqaHrNonumTest(tfds.testing.DatasetBuilderTestCase):
  """Config `nonum`: without count and area questions."""
  DATASET_CLASS = rsvqa_hr_dataset_builder.Builder
  EXAMPLE_DIR = HR_DUMMY
  BUILDER_CONFIG_NAMES_TO_TEST = ["nonum"]
  SPLITS = {"train": 2, "validation": 1, "test": 1, "test_phili": 1}


@pytest.mark.parametrize("answer, kind, binned", [
    ("0", "count", "0"), ("1", "count", "between 1 and 10"), ("10", "count", "between 1 and 10"),
    ("11", "count", "between 11 and 100"), ("100", "count", "between 11 and 100"),
    ("101", "count", "between 101 and 1000"), ("1000", "count", "between 101 and 1000"),
    ("1001", "count", "more than 1000"),
    ("0m2", "area", "0 m2"), ("7m2", "area", "between 1 m2 and 10 m2"), ("100 m2", "area", "between 11 m2 and 100 m2"),
    ("1000m2", "area", "between 101 m2 and 1000 m2"), ("1001m2", "area", "more than 1000 m2"),
    ("yes", "presence", "yes"), ("rural", "rural_urban", "rural"),
])
def test_binning_as_rsvqa_reports_it(answer, kind, binned):
  assert rsvqa_format.bin_answer(answer, kind, ("count", "area")) == binned


def test_types_outside_binned_types_keep_their_answer():
  assert rsvqa_format.bin_answer("42", "count", ("area",)) == "42"  # RSVQA-HR counts stay numbers.
  with pytest.raises(ValueError, match="count answer 'many' is not a whole number"):
    rsvqa_format.bin_answer("many", "count", ("count",))
  with pytest.raises(ValueError, match="area answer '12' is not a whole number of m2"):
    rsvqa_format.bin_answer("12", "area", ("area",))  # An area needs its unit.


def _split(tmp_path, questions, answers, skip=False):
  (tmp_path / "q.json").write_text(json.dumps({"questions": questions}))
  (tmp_path / "a.json").write_text(json.dumps({"answers": answers}))
  policy, counts = RecordPolicy(skip), collections.Counter()
  records = rsvqa_format.parse_split(tmp_path / "q.json", tmp_path / "a.json", ("count", "presence"), ("count",),
                                     policy, counts)
  return records, policy, counts


def _q(qid, kind="presence", active=True, img=1):
  return {"id": qid, "img_id": img, "type": kind, "question": f"question {qid}?", "answers_ids": [qid],
          "active": active}


def _a(qid, answer="yes", active=True, aid=None):
  return {"id": qid if aid is None else aid, "question_id": qid, "answer": answer, "active": active}


def test_parse_split_keeps_raw_answers_and_counts_inactive_records(tmp_path):
  records, policy, counts = _split(tmp_path, [_q(1, "count"), _q(2), _q(3, active=False)],
                                   [_a(1, "12"), _a(2), _a(3, active=False)])
  assert [(r.question_id, r.answer, r.raw_answer, r.type) for r in records] == [
      (1, "between 11 and 100", "12", "count"), (2, "yes", "yes", "presence")]
  assert counts == {"inactive questions": 1, "inactive answers": 1} and not policy.skipped


def test_answer_without_its_question_is_a_named_bad_record(tmp_path):
  with pytest.raises(BadRecordError, match=r"a\.json: answers\[1\] id=9: answer without its question "
                     r"\(question_id 9 is in no record of q\.json\)"):
    _split(tmp_path, [_q(1)], [_a(1), _a(9)])
  records, policy, _ = _split(tmp_path, [_q(1)], [_a(1), _a(9)], skip=True)
  assert [r.question_id for r in records] == [1]
  assert [(s["record"], s["reason"].split(" (")[0]) for s in policy.skipped] == [
      ("answers[1] id=9", "answer without its question")]


def test_unknown_type_is_a_named_bad_record(tmp_path):
  with pytest.raises(BadRecordError, match=r"q\.json: questions\[1\] id=2: unknown question type 'colour' "
                     r"\(expected one of \['count', 'presence'\]\)"):
    _split(tmp_path, [_q(1), _q(2, "colour")], [_a(1), _a(2)])
  records, policy, _ = _split(tmp_path, [_q(1), _q(2, "colour")], [_a(1), _a(2)], skip=True)
  assert [r.question_id for r in records] == [1]
  assert policy.skipped[0]["record"] == "questions[1] id=2"  # Its answer is not also an orphan.
  assert len(policy.skipped) == 1


@pytest.mark.parametrize("questions, answers, reason", [
    ([_q(1)], [], "no active answer"),
    ([_q(1)], [_a(1), _a(1, "no", aid=5)], "2 active answers"),
    ([_q(1)], [_a(1, aid=5)], "its answer id 5 is not in answers_ids [1]"),
    ([_q(1, "count")], [_a(1, "lots")], "count answer 'lots' is not a whole number"),
    ([_q(1), _q(1)], [_a(1)], "duplicate question id 1"),
    ([{"id": 1, "img_id": "a", "type": "presence", "question": "q?", "answers_ids": [1]}], [_a(1)],
     "field 'img_id' is 'a', not an integer"),
])
def test_other_bad_records_are_named(tmp_path, questions, answers, reason):
  records, policy, _ = _split(tmp_path, questions, answers, skip=True)
  assert reason in policy.skipped[-1]["reason"]


def test_build_metadata_and_bad_image(tmp_path):
  """A lenient build of edited dummy data: the missing image and the orphan answer are listed in metadata,
  the inactive question counted, and the examples carry binned and raw answers."""
  manual = builder_helpers.copy_dummy("rsvqa_lr", tmp_path)
  (manual / "Images_LR" / "2.tif").unlink()
  builder_helpers.edit_json(manual / "LR_split_test_answers.json",
                            lambda d: d["answers"].append(_a(99, "yes")))
  builder = builder_helpers.build("rsvqa_lr", "all_lenient", manual, tmp_path / "tfds")
  reasons = sorted((s["record"], s["reason"].split(":")[0]) for s in builder.info.metadata["skipped_records"])
  assert reasons == [("answers[3] id=99", "answer without its question (question_id 99 is in no record of "
                      "LR_split_test_questions.json)"),
                     ("questions[0] id=10", "image not found"),
                     ("questions[1] id=11", "image not found")]
  assert builder.info.metadata["skipped_counts"] == {"answer without its question": 1, "image not found": 2}
  assert builder.info.metadata["inactive"]["train"] == {"inactive questions": 1, "inactive answers": 1}
  assert set(builder.info.splits) == {"train", "test"}  # Nothing left of validation: not written empty.
  source = builder.as_data_source(split="train")
  examples = {int(ex["question_id"]): ex for ex in source}
  assert examples[2]["answer"] == b"between 11 and 100" and examples[2]["raw_answer"] == b"15"
  assert examples[5]["type"] == b"rural_urban" and examples[5]["image"].shape == (16, 16, 3)


def test_strict_build_stops_on_a_missing_image(tmp_path):
  manual = builder_helpers.copy_dummy("rsvqa_hr", tmp_path)
  (manual / "Data" / "3.png").unlink()
  with pytest.raises(BadRecordError, match=r"USGS_split_test_questions\.json: questions\[0\] id=20: image not "
                     r"found: .*Data/3\.png"):
    builder_helpers.build("rsvqa_hr", "all", manual, tmp_path / "tfds")
