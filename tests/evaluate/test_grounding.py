"""Grounding Acc@0.5 and mean IoU (rsvlm_jax/evaluate/grounding.py): IoU, hand-computed metrics, the command."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rsvlm_jax.evaluate import grounding
from rsvlm_jax.runtime import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _jsonl(tmp_path, name, rows) -> str:
  path = tmp_path / name
  path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
  return str(path)


def test_iou_hand_computed():
  assert grounding.iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
  assert grounding.iou((0, 0, 0.5, 1), (0, 0, 1, 1)) == pytest.approx(0.5)
  assert grounding.iou((0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)) == pytest.approx(0.0625 / 0.4375)
  assert grounding.iou((0, 0, 0.2, 0.2), (0.5, 0.5, 1, 1)) == 0.0  # Disjoint.
  assert grounding.iou((0.5, 0.5, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5)) == 0.0  # Empty union.


# DIOR-RSVG images are 800 x 800; references as RS-GPT4V writes them (GeoChat braces), one in pixels.
REFS = [
    {"question_id": "a", "image": "1.jpg", "text": "Where is the ship on the left?"},
    {"question_id": "a", "answer": "{<0><0><50><100>}"},  # (ymin, xmin, ymax, xmax) = (0, 0, 1, 0.5).
    {"question_id": "b", "answer": "[0, 0, 400, 400]"},  # Pixels: (0, 0, 0.5, 0.5).
    {"question_id": "c", "answer": "<box>(0,0),(1000,1000)</box>"},  # The whole image.
    {"question_id": "d", "answer": "{<10><10><20><20>}"},
]
PREDS = [
    {"question_id": "a", "text": "<loc0000><loc0000><loc1023><loc0512>"},  # ~ the same box: IoU ~1.
    {"question_id": "b", "text": "It is at {<0><0><50><25>}."},  # Half of it: IoU 0.5 (a hit).
    {"question_id": "c", "text": "[0.0, 0.0, 0.5, 0.5]"},  # A quarter: IoU 0.25.
    {"question_id": "d", "text": "I cannot find it."},  # No box: IoU 0.
]


def test_metrics_equal_hand_computed(tmp_path):
  m = grounding.score_files(_jsonl(tmp_path, "r.jsonl", REFS), _jsonl(tmp_path, "p.jsonl", PREDS),
                            image_size=(800, 800))
  iou_a = grounding.iou((0, 0, 1, 0.5), (0, 0, 1, 512 / 1023))
  assert iou_a == pytest.approx(1.0, abs=2e-3)
  assert m["acc@0.5"] == pytest.approx(50.0)  # a and b.
  assert m["mean_iou"] == pytest.approx(100 * (iou_a + 0.5 + 0.25 + 0.0) / 4)
  assert m["count"] == 4 and m["no_box"] == 1


def test_bad_predicted_box_scores_zero():
  assert grounding.predicted_box("[0.5, 0.5, 0.1, 0.1]") is None  # Inverted.
  assert grounding.predicted_box("<loc0001><loc0002><loc0003><loc9999>") is None  # Beyond the bins.
  m = grounding.grounding_metrics({"x": (0, 0, 1, 1)}, {"x": None})
  assert m == {"acc@0.5": 0.0, "mean_iou": 0.0, "count": 1, "no_box": 1}


def test_command_prints_one_json_object_last(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "rsvlm_jax.evaluate.grounding", "--refs",
                         _jsonl(tmp_path, "r.jsonl", REFS), "--preds", _jsonl(tmp_path, "p.jsonl", PREDS),
                         "--image_size=800,800"],
                        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr
  last = json.loads(proc.stdout.strip().splitlines()[-1])
  assert last["acc@0.5"] == pytest.approx(50.0) and 0 < last["mean_iou"] < 100


@pytest.mark.parametrize("refs, preds, args, message", [
    (REFS, PREDS, [], "references file {refs}:3 question_id='b': pixel box [0.0, 0.0, 400.0, 400.0] needs the "
     "image size (give --image_size WIDTH,HEIGHT)"),
    (REFS[:2] + [{"question_id": "b", "answer": "the ship"}], PREDS[:2], [],
     "references file {refs}:3 question_id='b': no box in the answer 'the ship'"),
    (REFS, PREDS[:3], ["--image_size=800,800"], "1 question_id(s) of {refs} have no prediction: 'd'"),
    (REFS, PREDS + [PREDS[1]], ["--image_size=800,800"],
     "predictions file {preds}:5: duplicate prediction for question_id 'b' (first on line 2)"),
    (REFS, PREDS, ["--image_size=800"], "--image_size must be WIDTH,HEIGHT in pixels"),
])
def test_errors_name_what_is_wrong_and_exit_2(tmp_path, capsys, refs, preds, args, message):
  r, p = _jsonl(tmp_path, "r.jsonl", refs), _jsonl(tmp_path, "p.jsonl", preds)
  assert cli.call(grounding.main, grounding.FLAGS, "grounding", ["--refs", r, "--preds", p, *args]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("grounding: error: ") and len(err.splitlines()) == 1
  assert message.format(refs=r, preds=p) in err
