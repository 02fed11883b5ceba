"""The `python -m rsvlm_jax.evaluate.captioning` CLI on temporary JSON files."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rsvlm_jax.evaluate import caption_metrics
from rsvlm_jax.evaluate import captioning

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFS = {"1": ["A white building with a parking lot.", "Many cars are parked near a building."],
        "2": ["Green trees around a pond.", "A pond surrounded by trees."]}
PREDS = {"1": "A building with many cars parked.", "2": "Trees around a small pond."}


def _write(tmp_path, name, data) -> str:
  path = tmp_path / name
  path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
  return str(path)


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "rsvlm_jax.evaluate.captioning", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120, check=False)


def test_cli_writes_exactly_the_metric_keys(tmp_path):
  out = str(tmp_path / "metrics.json")
  proc = _cli(f"--refs={_write(tmp_path, 'refs.json', REFS)}", f"--preds={_write(tmp_path, 'preds.json', PREDS)}",
              f"--out={out}")
  assert proc.returncode == 0, proc.stderr
  with open(out, encoding="utf-8") as f:
    written = json.load(f)
  assert list(written) == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"]
  assert written == pytest.approx(caption_metrics.caption_metrics(REFS, PREDS))
  assert "CIDEr-D" in proc.stdout and '"BLEU-4"' in proc.stdout   # the table and the JSON


def test_cli_mismatched_ids_fail_clearly(tmp_path):
  proc = _cli(f"--refs={_write(tmp_path, 'refs.json', REFS)}",
              f"--preds={_write(tmp_path, 'preds.json', {'1': 'a building', '3': 'a pond'})}")
  assert proc.returncode != 0
  assert "same image ids" in proc.stderr
  assert "in refs but not in preds (first 1: ['2'])" in proc.stderr
  assert "in preds but not in refs (first 1: ['3'])" in proc.stderr


def test_cli_empty_reference_list_fails_clearly(tmp_path):
  proc = _cli(f"--refs={_write(tmp_path, 'refs.json', {'1': REFS['1'], '2': []})}",
              f"--preds={_write(tmp_path, 'preds.json', PREDS)}")
  assert proc.returncode != 0
  assert "image '2' has no non-empty reference caption" in proc.stderr


def test_run_prints_and_returns_without_out(tmp_path, capsys):
  metrics = captioning.run(_write(tmp_path, "r.json", REFS), _write(tmp_path, "p.json", PREDS))
  printed = capsys.readouterr().out
  assert list(metrics) == list(caption_metrics.KEYS)
  assert json.loads(printed[printed.index("{"):]) == pytest.approx(metrics)
  assert not os.path.exists(tmp_path / "metrics.json")


@pytest.mark.parametrize("refs,preds,match", [
    (None, PREDS, "references file .*refs.json does not exist"),
    ("{not json", PREDS, "references file .*refs.json is not valid JSON"),
    (["a", "b"], PREDS, "references file .*refs.json must hold a JSON object"),
    ({"1": "a string"}, PREDS, "references file .*refs.json: image '1' must map to a list of strings"),
    (REFS, {"1": ["a list"], "2": "x"}, "predictions file .*preds.json: image '1' must map to a string"),
    (REFS, "", "predictions file .*preds.json is not valid JSON"),
])
def test_bad_files_name_the_file(tmp_path, refs, preds, match):
  refs_path = str(tmp_path / "refs.json") if refs is None else _write(tmp_path, "refs.json", refs)
  preds_path = _write(tmp_path, "preds.json", preds)
  with pytest.raises(ValueError, match=match):
    captioning.run(refs_path, preds_path)
