"""RS-GPT4V annotations: LLaVA-style train JSON, per-source test JSONL, task type, boxes in text.

No schema is published, so field names are read defensively (the aliases below) and anything else
fails through the bad-record policy of `caption_formats` (file + line / record id in each message).

Boxes: the forms recognised in a text, each read as (x1, y1, x2, y2) = (left, top, right, bottom):
  `{<x1><y1><x2><y2>}` (optionally `|<angle>`, ignored)  GeoChat style, 0-100
  `<box>(x1,y1),(x2,y2)</box>`                            Qwen-VL style, 0-1000
  `[x1, y1, x2, y2]` or `(x1, y1, x2, y2)`                 0-1 if every value <= 1, else pixels
and are normalised to [ymin, xmin, ymax, xmax] in [0, 1] (tfds BBox order). `bracket_scale`
overrides the scale of the bracket form ("unit", "percent", "permille", "pixel").

Only grounding records have boxes (`record_boxes`): four numbers in brackets are just as often data
("(1990, 2000, 2010, 2020)" answering a VQA question). The GeoChat and `<box>` forms always mark a
grounding record; the bracket form does so only as four ordered values in [0, 1] or in a grounding
source (DIOR-RSVG, see `marks_grounding`), else grounding words in the instruction are needed.
Box-like text of a grounding record with the wrong number of values (`[x, y, w]`, `{<1><2><3>}`, a
`<box>` tag of another shape; two values are a point, not a box) is reported by `malformed_boxes`,
for the builder to count and log.
"""
import dataclasses
import json
import re
from typing import Any, Iterator, Optional

from etils import epath

from rsvlm_datasets.caption_formats import BadRecordError
from rsvlm_datasets.caption_formats import inside
from rsvlm_datasets.caption_formats import load_json
from rsvlm_datasets.caption_formats import read_text
from rsvlm_datasets.caption_formats import RecordPolicy
# The box parser lives in rsvlm_jax/boxes.py (pure; the evaluators read predictions with it too).
from rsvlm_jax.boxes import box_scale  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.boxes import BOX_FORMS as _BOX_FORMS
from rsvlm_jax.boxes import find_boxes
from rsvlm_jax.boxes import normalize_box  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.boxes import parse_boxes
from rsvlm_jax.boxes import RawBox
from rsvlm_jax.boxes import SCALES  # noqa: F401  pylint: disable=unused-import
from rsvlm_jax.evaluate import qa_files

# The ClassLabel names of the `task` feature (new names go at the end: the ids of the others stay).
TASKS = ("caption", "vqa", "grounding", "other", "description", "conversation", "followup")
# An explicit task field ("task", "task_type") of a record: its value (lowercase, "-" and " " as "_") -> task.
TASK_KEYS = ("task", "task_type")
TASK_ALIASES = {
    "caption": "caption", "captioning": "caption", "image_caption": "caption", "image_captioning": "caption",
    "vqa": "vqa", "qa": "vqa", "question_answering": "vqa", "visual_question_answering": "vqa",
    "grounding": "grounding", "visual_grounding": "grounding", "rsvg": "grounding", "referring": "grounding",
    "description": "description", "detailed_description": "description", "detail": "description",
    "conversation": "conversation", "conv": "conversation", "complex_reasoning": "conversation",
    "reasoning": "conversation", "other": "other", "classification": "other",
}
TYPE_KEYS = ("type", "question_type")  # The question type of a VQA record (RSVQA: presence, count, ...).
DESCRIPTION_WORDS = 40  # A caption-like instruction answered at least this long is a detailed description.
FREE_FORM_WORDS = 20  # A question answered at least this long is a conversation turn, not short-answer VQA.
IMAGE_TOKEN = "<image>"
ID_KEYS = ("id", "question_id")
QID_KEYS = ("question_id", "qid", "id")
IMAGE_KEYS = ("image", "image_path", "img")
CONVERSATION_KEYS = ("conversations", "conversation", "messages")
ROLE_KEYS = ("from", "role")
TEXT_KEYS = ("value", "text", "content")
QUESTION_KEYS = ("text", "question", "prompt", "instruction")
ANSWER_KEYS = ("answer", "gt_answer", "ground_truth", "gt")
HUMAN_ROLES = ("human", "user")
MODEL_ROLES = ("gpt", "assistant", "model", "bot")


@dataclasses.dataclass(frozen=True)
class QARecord:
  key: str
  image: str  # Path relative to the images folder, as written in the annotation.
  source: str
  instruction: str
  answer: str
  file: str
  label: str  # How errors name the record: "line 3 question_id=..." or "[2] id=...".
  turn: int = 0  # Index of the (instruction, answer) pair in its conversation.
  task: Optional[str] = None  # From an explicit task field (`explicit_task`), else None: detected.
  type: str = ""  # The question type field, if any.


# --------------------------------------------------------------------------- fields


def first_key(row: dict, keys: tuple[str, ...]) -> Optional[str]:
  return next((k for k in keys if k in row), None)


def get_text(row: dict, keys: tuple[str, ...], what: str) -> str:
  """Returns the stripped non-empty string under the first present alias, else raises ValueError."""
  value = qa_files.string_field(row, keys, what)
  if not value:
    raise ValueError(f"empty {first_key(row, keys)!r}")
  return value


def get_image(row: dict) -> str:
  key = first_key(row, IMAGE_KEYS)
  value = row.get(key) if key else None
  if isinstance(value, list) and len(value) == 1:
    value = value[0]
  if not isinstance(value, str) or not value.strip():
    raise ValueError(f"missing or invalid image field (one of {list(IMAGE_KEYS)}; "
                     f"fields: {sorted(row)})")
  return value.strip()


def clean_instruction(text: str) -> str:
  """Removes the <image> placeholder (and the whitespace around it); keeps other line breaks."""
  return re.sub(r"\s*" + re.escape(IMAGE_TOKEN) + r"\s*", " ", text).strip()


def explicit_task(row: dict) -> Optional[str]:
  """The task named by a task field of `row` (TASK_KEYS, values TASK_ALIASES), None without one; ValueError for
  an unknown task."""
  key = first_key(row, TASK_KEYS)
  if key is None:
    return None
  value = row[key]
  name = re.sub(r"[\s-]+", "_", value.strip().lower()) if isinstance(value, str) else None
  if name not in TASK_ALIASES:
    raise ValueError(f"unknown task {value!r} (field {key!r}; expected one of "
                     f"{sorted(set(TASK_ALIASES.values()))} or an alias in rs_gpt4v_format.TASK_ALIASES)")
  return TASK_ALIASES[name]


def question_type(row: dict) -> str:
  """The question type field of `row` ("" without one); ValueError unless a non-empty string."""
  key = first_key(row, TYPE_KEYS)
  if key is None:
    return ""
  value = row[key]
  if not isinstance(value, str) or not value.strip():
    raise ValueError(f"unknown question type {value!r} (field {key!r}; expected a non-empty string)")
  return value.strip()


# --------------------------------------------------------------------------- train JSON


def _role(turn: Any, index: int) -> tuple[str, str]:
  if not isinstance(turn, dict):
    raise ValueError(f"conversations[{index}] is not an object")
  role = str(turn.get(first_key(turn, ROLE_KEYS) or "", "")).lower()
  if role in HUMAN_ROLES:
    return "human", get_text(turn, TEXT_KEYS, f"conversations[{index}].value")
  if role in MODEL_ROLES:
    return "gpt", get_text(turn, TEXT_KEYS, f"conversations[{index}].value")
  raise ValueError(f"conversations[{index}] has unknown role {role!r} "
                   f"(expected one of {HUMAN_ROLES + MODEL_ROLES})")


def conversation_pairs(turns: Any) -> list[tuple[str, str]]:
  """[(instruction, answer)] from alternating human/gpt turns; raises ValueError otherwise."""
  if not isinstance(turns, list) or not turns:
    raise ValueError("conversations is not a non-empty list")
  roles = [_role(turn, i) for i, turn in enumerate(turns)]
  if len(roles) % 2:
    raise ValueError(f"odd number of turns ({len(roles)}): a question has no answer")
  pairs = []
  for i in range(0, len(roles), 2):
    (r1, question), (r2, answer) = roles[i], roles[i + 1]
    if (r1, r2) != ("human", "gpt"):
      raise ValueError(f"turns {i},{i + 1} are {r1},{r2}; expected human then gpt")
    instruction = clean_instruction(question)
    if not instruction:
      raise ValueError(f"conversations[{i}]: empty instruction")
    pairs.append((instruction, answer))
  return pairs


def train_source(row: dict, image: str, default: str) -> str:
  """Source: a 'source' field, else the image path's first folder, else `default` (file stem)."""
  if isinstance(row.get("source"), str) and row["source"].strip():
    return row["source"].strip()
  parts = image.split("/")
  return parts[0] if len(parts) > 1 else default


def _train_rows(row: Any, stem: str) -> list[QARecord]:
  if not isinstance(row, dict):
    raise ValueError("record is not an object")
  row_id = get_text(row, ID_KEYS, "id")
  image = get_image(row)
  turns = row.get(first_key(row, CONVERSATION_KEYS) or "")
  source = train_source(row, image, stem)
  task, kind = explicit_task(row), question_type(row)
  return [QARecord(key=f"{stem}/{row_id}/{t}", image=image, source=source, instruction=q,
                   answer=a, file="", label="", turn=t, task=task, type=kind)
          for t, (q, a) in enumerate(conversation_pairs(turns))]


def parse_train_json(path: epath.PathLike, policy: RecordPolicy) -> list[QARecord]:
  """Reads a LLaVA-style list of {"id", "image", "conversations": [{"from", "value"}]}."""
  path = epath.Path(path)
  data = load_json(path)
  if not isinstance(data, list):
    raise BadRecordError(f"{path}: expected a list of conversation records")
  if not data:
    raise BadRecordError(f"{path}: the list of conversation records is empty: nothing to build")
  records, seen = [], set()
  for i, row in enumerate(data):
    row_id = row.get("id") if isinstance(row, dict) else None
    label = f"[{i}] id={row_id!r}"
    try:
      rows = _train_rows(row, path.stem)
      if rows and rows[0].key in seen:
        raise ValueError("duplicate id")
    except ValueError as e:
      policy.reject(path, label, e.args[0])
      continue
    seen.add(rows[0].key)
    records += [dataclasses.replace(r, file=str(path), label=label) for r in rows]
  return records


# --------------------------------------------------------------------------- test JSONL


def read_jsonl(path: epath.Path, policy: RecordPolicy) -> Iterator[tuple[int, dict]]:
  """Yields (line number, object); malformed lines and non-objects go through `policy`. A file with
  no line at all is a BadRecordError."""
  lines = read_text(path).splitlines()
  if not any(line.strip() for line in lines):
    raise BadRecordError(f"{path}: empty file: nothing to build")
  for lineno, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      policy.reject(path, f"line {lineno}", f"malformed JSON: {e.msg} (column {e.colno})")
      continue
    if not isinstance(row, dict):
      policy.reject(path, f"line {lineno}", "not a JSON object")
      continue
    yield lineno, row


def _split_row(row: dict) -> tuple[str, Optional[tuple[str, str]], Optional[str]]:
  """(question_id, (image, question) or None, answer or None); raises ValueError.

  A row with an answer field is an answer row (and also a question row if it names an image);
  any other row is a question row and needs image and text.
  """
  qid = get_text(row, QID_KEYS, "question_id")
  has_answer = first_key(row, ANSWER_KEYS) is not None
  has_question = not has_answer or first_key(row, IMAGE_KEYS) is not None
  question = None
  if has_question:
    question = (get_image(row), clean_instruction(get_text(row, QUESTION_KEYS, "text")))
    if not question[1]:
      raise ValueError("empty instruction")
  answer = get_text(row, ANSWER_KEYS, "answer") if has_answer else None
  return qid, question, answer


def _qid(row: dict) -> Optional[str]:
  key = first_key(row, QID_KEYS)
  return None if key is None else str(row[key])


def parse_test_jsonl(path: epath.PathLike, policy: RecordPolicy) -> list[QARecord]:
  """Reads question rows {"question_id", "image", "text"}, answer rows {"question_id", "answer"}."""
  path = epath.Path(path)
  questions, answers = {}, {}
  for lineno, row in read_jsonl(path, policy):
    try:
      qid, question, answer = _split_row(row)
      for table, value in ((questions, question), (answers, answer)):
        if value is not None and qid in table:
          raise ValueError(f"duplicate question_id {qid!r} (first on line {table[qid][0]})")
    except ValueError as e:
      policy.reject(path, f"line {lineno} question_id={_qid(row)!r}", e.args[0])
      continue
    if question is not None:
      questions[qid] = (lineno, question, row)
    if answer is not None:
      answers[qid] = (lineno, answer, row)
  return _pair(path, questions, answers, policy)


def _task_and_type(question_row: dict, answer_row: dict, answer_line: int) -> tuple[Optional[str], str]:
  """The explicit task and the question type of a pair, from its question row or its answer row (the same
  row for a combined one); ValueError for an unknown one or when the two rows disagree."""
  tasks, kinds = set(), set()
  for row, where in ((question_row, ""), (answer_row, f" (answer row, line {answer_line})")):
    try:
      tasks.add(explicit_task(row))
      kinds.add(question_type(row))
    except ValueError as e:
      raise ValueError(e.args[0] + where) from None
  tasks, kinds = tasks - {None}, kinds - {""}
  if len(tasks) > 1 or len(kinds) > 1:
    raise ValueError(f"question and answer rows disagree on the task {sorted(tasks)} or the type {sorted(kinds)} "
                     f"(answer row, line {answer_line})")
  return next(iter(tasks), None), next(iter(kinds), "")


def _pair(path: epath.Path, questions: dict, answers: dict, policy: RecordPolicy) -> list[QARecord]:
  for qid in answers.keys() - questions.keys():
    policy.reject(path, f"line {answers[qid][0]} question_id={qid!r}", "answer without question")
  records = []
  for qid, (lineno, (image, instruction), row) in questions.items():
    label = f"line {lineno} question_id={qid!r}"
    if qid not in answers:
      policy.reject(path, label, "question without answer")
      continue
    try:
      task, kind = _task_and_type(row, answers[qid][2], answers[qid][0])
    except ValueError as e:
      policy.reject(path, label, e.args[0])
      continue
    records.append(QARecord(key=f"{path.stem}/{qid}", image=image, source=path.stem,
                            instruction=instruction, answer=answers[qid][1], file=str(path),
                            label=label, task=task, type=kind))
  return records


# --------------------------------------------------------------------------- images


def resolve_image(images_dir: epath.Path, image: str, source: str) -> tuple[epath.Path, str]:
  """Finds images_dir/image, else images_dir/source/image; returns (path, path rel. to images_dir).

  A leading "/" is read as relative to images_dir. Raises ValueError for a path whose `..` leave
  images_dir (nothing is read then) and FileNotFoundError naming the paths tried.
  """
  rel = image.lstrip("/")
  for candidate in (rel, f"{source}/{rel}"):
    if inside(images_dir, candidate).exists():
      return images_dir / candidate, candidate
  raise FileNotFoundError(f"image not found: {images_dir / rel} (nor {images_dir / source / rel})")


# --------------------------------------------------------------------------- boxes

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_BOX_LIKE = (  # Fragments that look like a box whatever the number of values (see malformed_boxes).
    ("percent", re.compile(r"\{\s*(?:<[^<>{}]*>\s*)+(?:\|\s*<[^<>{}]*>\s*)?\}")),
    ("permille", re.compile(r"<box>.*?</box>", re.S)),
    ("bracket", re.compile(r"[\[(]" + _NUM + r"(?:," + _NUM + r")+[\])]")),
)
_GROUNDING_SOURCES = ("rsvg", "grounding")


def marks_grounding(box: RawBox, source: str = "") -> bool:
  """Whether `box` alone makes its record a grounding one: the GeoChat and <box> forms always; the
  bracket form as four ordered values in [0, 1], or any four values in a grounding source (rsvg)."""
  if box.form != "bracket" or any(hint in source.lower() for hint in _GROUNDING_SOURCES):
    return True
  x1, y1, x2, y2 = box.coords
  return 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def malformed_boxes(text: str) -> list[str]:
  """Box-like fragments of `text` that are not a box: GeoChat braces or a <box> tag not of the
  recognised shape, brackets holding three or five-plus numbers."""
  bad = []
  for (form, like), (_, valid) in zip(_BOX_LIKE, _BOX_FORMS):
    for m in like.finditer(text):
      n = m.group().count(",") + 1
      wrong = (n == 3 or n >= 5) if form == "bracket" else not valid.fullmatch(m.group())
      if wrong:
        bad.append((m.start(), m.group()))
  return [fragment for _, fragment in sorted(bad)]


# --------------------------------------------------------------------------- task type

_GROUNDING = re.compile(r"\b(bounding box(es)?|bbox|coordinates?|locate|locali[sz]e|grounding|"
                        r"detect)\b|\[refer\]|<ref>|\[detection\]", re.I)
_CAPTION = re.compile(r"\b(describe|description|caption|summari[sz]e)|\[caption\]|"
                      r"what (does|do) (this|the) (image|picture|photo|scene) "
                      r"(show|depict|contain)", re.I)
_DETAIL = re.compile(r"\b(in detail|detailed|details|thorough(ly)?|comprehensive(ly)?|elaborate|"
                     r"in depth|at length)\b", re.I)
_OTHER = re.compile(r"\b(classify|classification|categor(y|ize|ise)|scene type)\b", re.I)
_QUESTION = re.compile(r"^(what|which|how|is|are|does|do|can|was|were|where|who|why|when|has|"
                       r"have|count)\b", re.I)
_SOURCE_HINTS = (("caption", "caption"), ("rsvg", "grounding"), ("vqa", "vqa"),
                 ("floodnet", "vqa"), ("detail", "description"), ("conversation", "conversation"),
                 ("reasoning", "conversation"))


def _words(text: str) -> int:
  return len(text.split())


def detect_task(instruction: str, answer: str, source: str = "", turn: int = 0) -> str:
  """One of TASKS, from boxes, instruction wording, answer length, then the source name.

  Order: a box in the answer or instruction that `marks_grounding`, or grounding words -> grounding;
  caption words -> description with detail words ("in detail", ...) or an answer of DESCRIPTION_WORDS or
  more, else caption; classification words -> other; a question (ends with '?' or starts with a question
  word) -> vqa, or conversation when answered in FREE_FORM_WORDS or more; a source name containing caption /
  rsvg / vqa / floodnet / detail / conversation / reasoning -> that task; else other. A conversation turn
  after the first (`turn` > 0) is a followup: its question may need the turns before it.
  """
  boxes = find_boxes(answer) + find_boxes(instruction)
  if any(marks_grounding(b, source) for b in boxes) or _GROUNDING.search(instruction):
    return "grounding"
  if _CAPTION.search(instruction):
    detailed = _DETAIL.search(instruction) or _words(answer) >= DESCRIPTION_WORDS
    return "description" if detailed else "caption"
  if _OTHER.search(instruction):
    return "other"
  task = None
  if instruction.rstrip().endswith("?") or _QUESTION.match(instruction):
    task = "conversation" if _words(answer) >= FREE_FORM_WORDS else "vqa"
  task = task or next((t for hint, t in _SOURCE_HINTS if hint in source.lower()), "other")
  return "followup" if task == "conversation" and turn > 0 else task


def record_task(record: QARecord) -> str:
  """The task of `record`: its explicit task field (a conversation turn after the first is a followup),
  else `detect_task`."""
  if record.task is not None:
    return "followup" if record.task == "conversation" and record.turn > 0 else record.task
  return detect_task(record.instruction, record.answer, record.source, record.turn)


def record_boxes(record: QARecord, image_size: tuple[int, int], bracket_scale: str = "auto",
                 task: Optional[str] = None) -> list[tuple[float, ...]]:
  """Boxes of a grounding record: from the answer, else from the instruction (region prompts).

  Records of other tasks (`task`, else `detect_task`) have none: their bracketed numbers are data.
  Raises ValueError for an inverted or out-of-range box.
  """
  task = task or record_task(record)
  if task != "grounding":
    return []
  boxes = parse_boxes(record.answer, image_size, bracket_scale)
  return boxes or parse_boxes(record.instruction, image_size, bracket_scale)
