"""Reference and prediction JSONL files of question answering, as RS-GPT4V and LLaVA-style tools write them.

References (the RS-GPT4V test layout): question rows {"question_id", "image", "text"} and answer rows
{"question_id", "answer"} in one file (or answer rows only); a `type` (or `question_type`) field on either row
gives the question type. Predictions: {"question_id", "text"} per line (`answer` or `prediction` are read too),
other fields ignored. question_id may be a number or a string (compared as text).

Every reference question_id needs exactly one answer row and exactly one prediction; a duplicate, a missing or
an extra question_id, a malformed line or field is a ValueError naming the file, the line and the question_id.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Iterator

QID_KEYS = ("question_id", "qid", "id")
ANSWER_KEYS = ("answer", "gt_answer", "ground_truth", "gt")
TYPE_KEYS = ("type", "question_type")
PRED_KEYS = ("text", "answer", "prediction")
_SHOWN = 5  # question_ids listed in an error.


@dataclasses.dataclass(frozen=True)
class Reference:
  question_id: str
  answer: str
  type: str  # "" when neither row has one.
  question: str  # "" for an answers-only file.
  line: int  # Of the answer row.


def _first(row: dict, keys: tuple[str, ...]):
  return next((k for k in keys if k in row), None)


def _rows(path: str, what: str) -> Iterator[tuple[int, dict]]:
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    raise ValueError(f"{what} file {path} does not exist") from None
  except UnicodeDecodeError as e:
    raise ValueError(f"{what} file {path} is not UTF-8 text (byte {e.start})") from None
  found = False
  for lineno, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f"{what} file {path}:{lineno}: malformed JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(row, dict):
      raise ValueError(f"{what} file {path}:{lineno}: not a JSON object")
    found = True
    yield lineno, row
  if not found:
    raise ValueError(f"{what} file {path} has no rows")


def _qid(row: dict, where: str) -> str:
  key = _first(row, QID_KEYS)
  value = row.get(key) if key else None
  if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
    raise ValueError(f"{where}: missing or invalid question_id (one of {list(QID_KEYS)}; fields: {sorted(row)})")
  return str(value).strip()


def string_field(row: dict, keys: tuple[str, ...], what: str) -> str:
  """The stripped string under the first of `keys` present in `row` (numbers as text); ValueError naming `what`."""
  key = _first(row, keys)
  if key is None:
    raise ValueError(f"missing field {what} (one of {list(keys)}; fields: {sorted(row)})")
  value = row[key]
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    value = str(value)
  if not isinstance(value, str):
    raise ValueError(f"field {key!r} is {type(value).__name__}, not a string")
  return value.strip()


def _text(row: dict, keys: tuple[str, ...], where: str) -> str:
  try:
    return string_field(row, keys, keys[0])
  except ValueError as e:
    raise ValueError(f"{where}: {e}") from None


def _type(row: dict, where: str) -> str:
  key = _first(row, TYPE_KEYS)
  if key is None:
    return ""
  if not isinstance(row[key], str):
    raise ValueError(f"{where}: field {key!r} is {type(row[key]).__name__}, not a string")
  return row[key].strip()


def read_refs(path: str) -> dict[str, Reference]:
  """{question_id: Reference}, in file order; see the module doc."""
  questions, answers = {}, {}
  for lineno, row in _rows(path, "references"):
    where = f"references file {path}:{lineno}"
    qid = _qid(row, where)
    is_answer = _first(row, ANSWER_KEYS) is not None
    table = answers if is_answer else questions
    if qid in table:
      kind = "answer" if is_answer else "question"
      raise ValueError(f"{where}: duplicate {kind} row for question_id {qid!r} (first on line {table[qid][0]})")
    if is_answer:
      answer = _text(row, ANSWER_KEYS, f"{where} question_id={qid!r}")
      answers[qid] = (lineno, answer, _type(row, where), _text(row, ("text",), where) if "text" in row else "")
    else:
      questions[qid] = (lineno, _type(row, where), _text(row, ("text", "question"), f"{where} question_id={qid!r}"))
  unanswered = [q for q in questions if q not in answers]
  if unanswered:
    raise ValueError(f"references file {path}: {len(unanswered)} question_id(s) without an answer row: "
                     f"{_ids(unanswered)}")
  refs = {}
  for qid, (lineno, answer, kind, text) in answers.items():
    _, q_kind, question = questions.get(qid, (0, "", text))
    refs[qid] = Reference(qid, answer, kind or q_kind, question, lineno)
  return refs


def read_preds(path: str) -> dict[str, tuple[int, str]]:
  """{question_id: (line, predicted text)}; a duplicate question_id is a ValueError naming both lines."""
  preds = {}
  for lineno, row in _rows(path, "predictions"):
    where = f"predictions file {path}:{lineno}"
    qid = _qid(row, where)
    if qid in preds:
      raise ValueError(f"{where}: duplicate prediction for question_id {qid!r} (first on line {preds[qid][0]})")
    preds[qid] = (lineno, _text(row, PRED_KEYS, f"{where} question_id={qid!r}"))
  return preds


def match(refs: dict[str, Reference], preds: dict[str, tuple[int, str]], refs_path: str,
          preds_path: str) -> dict[str, str]:
  """{question_id: prediction} for every reference; a missing or extra question_id is a ValueError naming it."""
  missing = [q for q in refs if q not in preds]
  extra = [q for q in preds if q not in refs]
  problems = []
  if missing:
    problems.append(f"{len(missing)} question_id(s) of {refs_path} have no prediction: {_ids(missing)}")
  if extra:
    problems.append(f"{len(extra)} question_id(s) of {preds_path} are not in the references: {_ids(extra)}")
  if problems:
    raise ValueError("; ".join(problems))
  return {q: preds[q][1] for q in refs}


def _ids(ids: list[str]) -> str:
  shown = ", ".join(repr(q) for q in ids[:_SHOWN])
  return shown + (f" (and {len(ids) - _SHOWN} more)" if len(ids) > _SHOWN else "")
