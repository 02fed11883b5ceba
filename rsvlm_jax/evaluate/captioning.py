r"""Scores caption predictions against references from JSON files (COCO caption metrics).

  python -m rsvlm_jax.evaluate.captioning --refs=REFS.json --preds=PREDS.json [--out=OUT.json] [--meteor]

REFS.json is {"image_id": ["reference", ...], ...} and PREDS.json is {"image_id": "caption", ...}, with
exactly the same ids. Prints a table and the JSON of BLEU-1..4, ROUGE-L and CIDEr-D (pycocoevalcap's
x1 scale; "METEOR" too with --meteor, which needs Java) and writes that JSON to --out if given.
"""
from __future__ import annotations

import json
from typing import Any

from absl import flags

from rsvlm_jax.evaluate import caption_metrics
from rsvlm_jax.runtime import cli

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
_REFS = flags.DEFINE_string("refs", None, 'JSON file {"image_id": ["reference", ...]}.', flag_values=FLAGS)
_PREDS = flags.DEFINE_string("preds", None, 'JSON file {"image_id": "predicted caption"}.', flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "Where to write the metrics JSON (default: print only).", flag_values=FLAGS)
_METEOR = flags.DEFINE_bool("meteor", False, "Also compute METEOR (needs Java; skipped if unavailable).",
                            flag_values=FLAGS)
flags.mark_flags_as_required(["refs", "preds"], flag_values=FLAGS)


def _load_json(path: str, what: str) -> Any:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise ValueError(f"{what} file {path} does not exist") from None
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f"cannot read {what} file {path}: {e}") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"{what} file {path} is not valid JSON: {e}") from None


def load_refs(path: str) -> dict[str, list[str]]:
  """Reads {"image_id": ["ref", ...]}; ValueError naming the file if it is missing or malformed."""
  data = _load_json(path, "references")
  if not isinstance(data, dict):
    raise ValueError(f'references file {path} must hold a JSON object {{"image_id": ["ref", ...]}}, '
                     f"got {type(data).__name__}")
  for key, value in data.items():
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
      raise ValueError(f"references file {path}: image {key!r} must map to a list of strings")
  return data


def load_preds(path: str) -> dict[str, str]:
  """Reads {"image_id": "caption"}; ValueError naming the file if it is missing or malformed."""
  data = _load_json(path, "predictions")
  if not isinstance(data, dict):
    raise ValueError(f'predictions file {path} must hold a JSON object {{"image_id": "caption"}}, '
                     f"got {type(data).__name__}")
  for key, value in data.items():
    if not isinstance(value, str):
      raise ValueError(f"predictions file {path}: image {key!r} must map to a string, got {type(value).__name__}")
  return data


def table(metrics: dict[str, float]) -> str:
  """A two-column plain-text table."""
  width = max(len("metric"), *(len(k) for k in metrics))
  lines = [f"{'metric'.ljust(width)} | value", f"{'-' * width}-+-{'-' * 8}"]
  return "\n".join(lines + [f"{k.ljust(width)} | {v:.4f}" for k, v in metrics.items()])


def run(refs_path: str, preds_path: str, out_path: str | None = None, meteor: bool = False) -> dict[str, float]:
  """Loads both files, scores them, prints the table and JSON, and writes the JSON to `out_path`."""
  refs, preds = load_refs(refs_path), load_preds(preds_path)
  try:
    metrics = caption_metrics.caption_metrics(refs, preds, meteor=meteor)
  except (ValueError, TypeError) as e:
    raise ValueError(f"--refs {refs_path} / --preds {preds_path}: {e}") from None
  cli.print_result(table(metrics), metrics, out_path, json_indent=2)
  return metrics


def main(argv):
  del argv
  if _OUT.value:
    cli.check_output_file(_OUT.value, "--out")  # Before the metrics are computed.
  with cli.user_errors("captioning", cli.USER_ERRORS + (OSError,)):
    run(_REFS.value, _PREDS.value, _OUT.value, _METEOR.value)


if __name__ == "__main__":
  cli.run(main, FLAGS, "captioning")
