"""VQA accuracy (rsvlm_jax/evaluate/vqa.py): normalisation, hand-computed metrics, the command and its errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rsvlm_jax.evaluate import vqa
from rsvlm_jax.runtime import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _jsonl(tmp_path, name, rows) -> str:
  path = tmp_path / name
  path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
  return str(path)


# RS-GPT4V test layout: question rows, then answer rows (one with the type on the answer row only).
REFS = [
    {"question_id": 1, "image": "1.tif", "text": "Is there a road?", "type": "presence"},
    {"question_id": 2, "image": "1.tif", "text": "How many buildings?", "type": "count"},
    {"question_id": 3, "image": "2.tif", "text": "Is it urban or rural?", "type": "rural_urban"},
    {"question_id": 4, "image": "2.tif", "text": "Is there water?", "type": "presence"},
    {"question_id": 5, "image": "2.tif", "text": "More roads than buildings?"},
    {"question_id": 1, "answer": "yes"},
    {"question_id": 2, "answer": "between 1 and 10"},
    {"question_id": 3, "answer": "rural"},
    {"question_id": 4, "answer": "no"},
    {"question_id": 5, "answer": "yes", "type": "comp"},
]
PREDS = [
    {"question_id": 1, "text": "Yes."},  # Hit after normalisation.
    {"question_id": 2, "text": "Between 1 and 10"},  # Hit.
    {"question_id": 3, "text": "urban"},  # Miss.
    {"question_id": 4, "text": "yes", "model_id": "m"},  # Miss; extra fields ignored.
    {"question_id": "5", "text": "YES"},  # Hit; a string id matches a number.
]


@pytest.mark.parametrize("raw, normal", [
    ("Yes.", "yes"), ("  The  urban area! ", "urban area"), ("Two", "2"), ("an airport", "airport"),
    ("1,000 m2", "1000 m2"), ("1.5", "1.5"), ("between 1 and 10.", "between 1 and 10"), ("no-", "no"),
    ("more than 1000", "more than 1000"),
])
def test_normalize(raw, normal):
  assert vqa.normalize(raw) == normal


def test_metrics_equal_hand_computed(tmp_path):
  m = vqa.score_files(_jsonl(tmp_path, "refs.jsonl", REFS), _jsonl(tmp_path, "preds.jsonl", PREDS))
  # presence 1/2, count 1/1, rural_urban 0/1, comp 1/1 -> overall 3/5; average (50 + 100 + 0 + 100) / 4.
  assert m["accuracy"] == pytest.approx(60.0)
  assert m["per_type"] == pytest.approx({"comp": 100.0, "count": 100.0, "presence": 50.0, "rural_urban": 0.0})
  assert m["average_over_types"] == pytest.approx(62.5)
  assert m["accuracy_non_numeric"] == pytest.approx(50.0)  # Without count: 2 hits of 4.
  assert m["count"] == 5 and m["per_type_count"] == {"comp": 1, "count": 1, "presence": 2, "rural_urban": 1}


def test_untyped_answers_only_refs():
  m = vqa.vqa_metrics({"a": ("yes", ""), "b": ("no", "")}, {"a": "yes", "b": "yes"})
  assert m["per_type"] == {"untyped": 50.0} and m["accuracy"] == 50.0 and m["average_over_types"] == 50.0
  assert vqa.vqa_metrics({"a": ("3", "count")}, {"a": "3"})["accuracy_non_numeric"] is None


def test_command_prints_one_json_object_last(tmp_path):
  out = tmp_path / "m.json"
  proc = subprocess.run([sys.executable, "-m", "rsvlm_jax.evaluate.vqa", "--refs", _jsonl(tmp_path, "r.jsonl", REFS),
                         "--preds", _jsonl(tmp_path, "p.jsonl", PREDS), f"--out={out}"],
                        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr
  last = json.loads(proc.stdout.strip().splitlines()[-1])
  assert last["accuracy"] == pytest.approx(60.0) and last["average_over_types"] == pytest.approx(62.5)
  assert set(last["per_type"]) == {"comp", "count", "presence", "rural_urban"}
  assert json.loads(out.read_text()) == last


@pytest.mark.parametrize("refs, preds, message", [
    (REFS, PREDS[:4], "1 question_id(s) of {refs} have no prediction: '5'"),
    (REFS, PREDS + [{"question_id": 9, "text": "no"}], "1 question_id(s) of {preds} are not in the references: '9'"),
    (REFS, PREDS + [PREDS[0]], "predictions file {preds}:6: duplicate prediction for question_id '1' "
     "(first on line 1)"),
    (REFS + [REFS[-1]], PREDS, "references file {refs}:11: duplicate answer row for question_id '5' "
     "(first on line 10)"),
    (REFS[:-1], PREDS, "references file {refs}: 1 question_id(s) without an answer row: '5'"),
    (REFS, PREDS[:1] + ["{not json"], "predictions file {preds}:2: malformed JSON"),
    (REFS, PREDS[:1] + [{"text": "yes"}], "predictions file {preds}:2: missing or invalid question_id"),
    ([], PREDS, "references file {refs} has no rows"),
])
def test_errors_name_the_question_id_and_exit_2(tmp_path, capsys, refs, preds, message):
  r, p = _jsonl(tmp_path, "r.jsonl", refs), _jsonl(tmp_path, "p.jsonl", preds)
  assert cli.call(vqa.main, vqa.FLAGS, "vqa", ["--refs", r, "--preds", p]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("vqa: error: ") and len(err.splitlines()) == 1
  assert message.format(refs=r, preds=p) in err


def test_missing_file_and_unwritable_out(tmp_path, capsys):
  p = _jsonl(tmp_path, "p.jsonl", PREDS)
  assert cli.call(vqa.main, vqa.FLAGS, "vqa", ["--refs", str(tmp_path / "nope.jsonl"), "--preds", p]) == 2
  assert f"references file {tmp_path / 'nope.jsonl'} does not exist" in capsys.readouterr().err
  assert cli.call(vqa.main, vqa.FLAGS, "vqa", ["--refs", p, "--preds", p, f"--out={tmp_path}"]) == 2
  assert "--out" in capsys.readouterr().err
