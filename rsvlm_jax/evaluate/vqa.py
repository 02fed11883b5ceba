r"""Scores VQA answers as RSVQA and PaliGemma report them: normalised exact match, per question type and overall.

  python -m rsvlm_jax.evaluate.vqa --refs=REFS.jsonl --preds=PREDS.jsonl [--out=OUT.json]

REFS.jsonl is in the RS-GPT4V test layout (question rows {"question_id", "image", "text"}, answer rows
{"question_id", "answer"}, a "type" field where present) and PREDS.jsonl as LLaVA-style tools write it
({"question_id", "text"}); rsvlm_jax/evaluate/qa_files.py says what else is read. Every reference needs exactly
one prediction: a missing, extra or duplicate question_id is an error naming it (exit 2).

Prints a table, then one JSON object last on stdout (all accuracies in percent):
  accuracy            share of questions answered exactly (after `normalize`), over all questions;
  per_type            {type: accuracy}; questions without a type count as "untyped";
  average_over_types  the mean of per_type (RSVQA's "AA"; `accuracy` is its "OA");
  accuracy_non_numeric  accuracy over the questions whose type is not count or area (PaliGemma's "nonum"
                      RSVQA numbers), null when there are none;
  count, per_type_count  numbers of questions.
Compare answers after binning them as the references are (RSVQA-LR counts, RSVQA-HR areas: the rsvqa_lr and
rsvqa_hr builders' `answer`), which is what a model trained on them writes.
"""
from __future__ import annotations

import collections
import re
from typing import Mapping, Optional

from absl import flags

from rsvlm_jax.evaluate import qa_files
from rsvlm_jax.runtime import cli

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
_REFS = flags.DEFINE_string("refs", None, "Reference JSONL (RS-GPT4V test layout).", flag_values=FLAGS)
_PREDS = flags.DEFINE_string("preds", None, 'Predictions JSONL {"question_id", "text"}.', flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "Where to write the metrics JSON (default: print only).", flag_values=FLAGS)
flags.mark_flags_as_required(["refs", "preds"], flag_values=FLAGS)

NUMERIC_TYPES = ("count", "area")
UNTYPED = "untyped"
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_PERIOD = re.compile(r"(?<!\d)\.|\.(?!\d)")  # A period that is not a decimal point.
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")  # 1,000 -> 1000.
_PUNCTUATION = re.compile(r"[^\w\s.]")


def normalize(answer: str) -> str:
  """The answer compared: lower case; a thousands comma dropped (1,000 -> 1000); every other punctuation
  character, and a period that is not a decimal point, replaced by a space; the articles a, an, the removed;
  the number words zero..ten (and none) written as digits; whitespace collapsed to single spaces and stripped.

  This is the VQA-style normalisation RSVQA-trained models are scored with: "Yes." == "yes", "The urban
  area" == "urban area", "Two" == "2", "between 1 and 10" stays as it is.
  """
  text = _THOUSANDS.sub("", answer.lower())
  text = _PERIOD.sub(" ", _PUNCTUATION.sub(" ", text).replace("_", " "))
  text = _ARTICLES.sub(" ", text)
  return " ".join(_NUMBER_WORDS.get(word, word) for word in text.split())


def _percent(hits: int, n: int) -> float:
  return 100.0 * hits / n


def vqa_metrics(refs: Mapping[str, tuple[str, str]], preds: Mapping[str, str]) -> dict:
  """Metrics of the module doc from refs {question_id: (answer, type)} and preds {question_id: text} (same
  ids; a missing prediction is a KeyError)."""
  if not refs:
    raise ValueError("no reference questions to score")
  hits, totals = collections.Counter(), collections.Counter()
  for qid, (answer, kind) in refs.items():
    kind = kind or UNTYPED
    totals[kind] += 1
    hits[kind] += normalize(preds[qid]) == normalize(answer)
  per_type = {k: _percent(hits[k], totals[k]) for k in sorted(totals)}
  non_numeric = [k for k in totals if k not in NUMERIC_TYPES]
  n_non_numeric = sum(totals[k] for k in non_numeric)
  return {
      "accuracy": _percent(sum(hits.values()), sum(totals.values())),
      "per_type": per_type,
      "average_over_types": sum(per_type.values()) / len(per_type),
      "accuracy_non_numeric": (_percent(sum(hits[k] for k in non_numeric), n_non_numeric)
                               if n_non_numeric else None),
      "count": sum(totals.values()),
      "per_type_count": {k: totals[k] for k in sorted(totals)},
  }


def score_files(refs_path: str, preds_path: str) -> dict:
  """Reads both files (qa_files) and scores them; ValueError naming the file / line / question_id."""
  refs = qa_files.read_refs(refs_path)
  preds = qa_files.match(refs, qa_files.read_preds(preds_path), refs_path, preds_path)
  return vqa_metrics({q: (r.answer, r.type) for q, r in refs.items()}, preds)


def table(metrics: dict) -> str:
  """Accuracy overall, per type and averaged, as plain text."""
  rows = [("overall", metrics["accuracy"], metrics["count"])]
  rows += [(f"  {k}", v, metrics["per_type_count"][k]) for k, v in metrics["per_type"].items()]
  rows.append(("average over types", metrics["average_over_types"], None))
  if metrics["accuracy_non_numeric"] is not None:
    rows.append(("non-numeric", metrics["accuracy_non_numeric"], None))
  width = max(len(r[0]) for r in rows)
  lines = [f"{'VQA accuracy (%)'.ljust(width)} |  value |     n"]
  return "\n".join(lines + [f"{name.ljust(width)} | {value:6.2f} | {'' if n is None else n:>5}"
                            for name, value, n in rows])


def run(refs_path: str, preds_path: str, out_path: Optional[str] = None) -> dict:
  """Scores the files, prints the table and then the JSON (last), writes the JSON to `out_path`."""
  metrics = score_files(refs_path, preds_path)
  cli.print_result(table(metrics), metrics, out_path)
  return metrics


def main(argv):
  del argv
  if _OUT.value:
    cli.check_output_file(_OUT.value, "--out")  # Before the files are read.
  with cli.user_errors("vqa", cli.USER_ERRORS + (OSError,)):
    run(_REFS.value, _PREDS.value, _OUT.value)


if __name__ == "__main__":
  cli.run(main, FLAGS, "vqa")
