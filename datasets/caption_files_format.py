"""Your own captions in one CSV or JSONL file: one row per (image, caption), merged into one record per image.

Fields (CSV header or JSONL keys; CSV header names are matched case-insensitively):
  image       path of the image file, relative to the annotation file's folder (absolute paths, and paths whose
              `..` leave that folder, are refused and never read)
  caption     one caption; several rows of the same image give it several captions (in file order, exact
              duplicates once)
  split       optional: train, val (or validation), test; empty or absent: the split the image's other rows
              give, else train. Two different splits for one image are a bad record.
  class_name  optional: a scene class ('' if absent); two different ones for one image are a bad record.
Other fields are ignored. Errors name the file and the line (`line 7 image='a.jpg'`) and follow the bad-record
policy of `caption_formats` (strict, or skipped and listed with skip_bad_records). CSV quoting is read strictly:
a quote opened and never closed (which would swallow the rows after it into one caption), or text after a
closing quote, is a bad record on the line where it starts, and reading resumes on the next line. A file that is not UTF-8, a CSV
without an `image` or `caption` column, or a file without rows is always fatal.
"""
import contextlib
import csv
import dataclasses
import io
import json
import posixpath
import re
from typing import Any, Iterator

from etils import epath

from rsvlm_datasets.caption_formats import BadRecordError
from rsvlm_datasets.caption_formats import CaptionRecord
from rsvlm_datasets.caption_formats import inside
from rsvlm_datasets.caption_formats import read_text
from rsvlm_datasets.caption_formats import RecordPolicy
from rsvlm_jax.data import image_io

SUFFIXES = (".csv", ".jsonl")
REQUIRED = ("image", "caption")
SPLITS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
_WINDOWS_ABSOLUTE = re.compile(r"^([A-Za-z]:)?[\\/]")
# Characters in one CSV field: the csv module's default (128 Ki) refused long fields with a bare csv.Error.
# The whole file is in memory already; the limit only bounds what one runaway quote makes of it.
FIELD_LIMIT = 1 << 24


@dataclasses.dataclass(frozen=True)
class Row:
  line: int
  image: str  # Normalised relative path ('a/b.jpg').
  caption: str
  split: str  # TFDS split name, or '' when the row gives none.
  class_name: str


def find_annotation_file(folder: epath.PathLike) -> epath.Path:
  """The one .csv or .jsonl file directly in `folder` (the manual_dir); none or several is an error."""
  folder = epath.Path(folder)
  if not folder.is_dir():
    raise BadRecordError(f"{folder}: not a folder (manual_dir must be the folder holding the annotation file)")
  found = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
  if len(found) != 1:
    what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
    raise BadRecordError(f"{folder}: expected exactly one annotation file (.csv or .jsonl) there, found {what}")
  return found[0]


def _string(fields: dict[str, Any], key: str, required: bool) -> str:
  value = fields.get(key)
  if value is None or (isinstance(value, str) and not value.strip()):
    if required:
      raise ValueError(f"missing or empty {key!r}")
    return ""
  if not isinstance(value, str):
    raise ValueError(f"field {key!r} is {type(value).__name__}, not a string")
  return value.strip()


def _relative_image(image: str, root: epath.Path) -> str:
  """'./a\\b.jpg' -> 'a/b.jpg'; absolute paths and paths leaving `root` raise ValueError."""
  if _WINDOWS_ABSOLUTE.match(image):
    raise ValueError(f"image path {image!r} is absolute: give it relative to the annotation file's folder {root}")
  inside(root, image)  # Raises for `..` leaving the folder.
  return posixpath.normpath(image.replace("\\", "/"))


def to_row(fields: dict[str, Any], line: int, root: epath.Path) -> Row:
  """One row's fields -> Row (image relative to `root`); raises ValueError with the reason."""
  split = _string(fields, "split", False).lower()
  if split and split not in SPLITS:
    raise ValueError(f"unknown split {split!r} (expected one of train, val, validation, test, or empty)")
  return Row(line=line, image=_relative_image(_string(fields, "image", True), root),
             caption=_string(fields, "caption", True), split=SPLITS.get(split, ""),
             class_name=_string(fields, "class_name", False))


def _label(line: int, fields: Any) -> str:
  image = fields.get("image") if isinstance(fields, dict) else None
  return f"line {line}" + (f" image={image!r}" if image is not None else "")


@contextlib.contextmanager
def _field_limit(limit: int):
  previous = csv.field_size_limit(limit)
  try:
    yield
  finally:
    csv.field_size_limit(previous)


def _open_quote_line(lines: list[str], first: int, last: int) -> int:
  """The line (of first..last) where the quoted field that runs past a line end opens; `first` if none does."""
  opened, state = first, "start"
  for n in range(first, last + 1):
    for c in lines[n - 1]:
      if state == "quoted":
        if c in "\r\n":
          return opened
        state = "quote" if c == '"' else "quoted"
      elif c in ",\r\n":
        state = "start"
      elif state == "start" and c == '"':
        opened, state = n, "quoted"
      else:
        state = "quoted" if state == "quote" and c == '"' else "field"  # '""' inside quotes is one quote.
  return first


def _csv_error(error: csv.Error, lines: list[str], first: int, last: int) -> str:
  """The reason a CSV record (lines first..last) could not be read, naming where its quote opens."""
  message = str(error)
  if "field limit" in message:
    return (f"a field longer than {csv.field_size_limit()} characters (an unterminated quote?): {message}")
  if "unexpected end of data" in message:
    return (f"unterminated quote: the quoted field opening on line {_open_quote_line(lines, first, last)} is "
            f"never closed (it would run to the end of the file, line {last}); the lines after it are read as rows "
            "of their own")
  if "expected after" in message and last > first:
    return (f"unterminated quote: the quoted field opening on line {_open_quote_line(lines, first, last)} runs "
            f"on to line {last}, where a quote is followed by text; the lines after it are read as rows of their own")
  if "expected after" in message:
    return f"text after the closing quote of a field ({message}): quote the whole field, doubling quotes inside it"
  return f"malformed CSV: {message}"


def _swallowed_row(lines: list[str], first: int, last: int, image_column: int) -> str | None:
  """Why a record spanning lines first..last looks like an unterminated quote (a later line in it reads as a
  row naming an image), or None. A quote closed by one followed by a comma or line end passes the csv module."""
  for n in range(first + 1, last + 1):
    try:
      row = next(csv.reader([lines[n - 1]]), [])
    except csv.Error:
      continue
    if len(row) > image_column and row[image_column].strip().lower().endswith(image_io.IMAGE_EXTENSIONS):
      return (f"unterminated quote? the quoted field opening on line {_open_quote_line(lines, first, last)} runs on "
              f"to line {last} and holds line {n}, which reads as a row of its own ({lines[n - 1].strip()[:80]!r}); "
              "the lines after it are read as rows of their own")
  return None


def _csv_records(lines: list[str], image_column: int) -> Iterator[tuple[int, Any]]:
  """(line, values or ValueError) for the records after the header. A record that cannot be read (a quote
  opened and never closed, text after a closing quote, an oversized field) is an error on the line where it
  starts, and reading resumes on the next line, so the rows an unterminated quote swallowed are kept."""
  i = 1  # Index in `lines` where the reader starts: the line after the header.
  while i < len(lines):
    reader = csv.reader(lines[i:], strict=True)  # strict: a quote left open, or closed too early, raises.
    end = 0
    try:
      for values in reader:
        start, end = end + 1, reader.line_num
        problem = _swallowed_row(lines, i + start, i + end, image_column) if end > start else None
        if problem:
          yield i + start, ValueError(problem)
          break
        yield i + start, values
      else:
        return
    except csv.Error as e:
      start = end + 1
      yield i + start, ValueError(_csv_error(e, lines, i + start, i + reader.line_num))
    i += start  # Resume on the line after the one where the bad record starts.


def _csv_fields(path: epath.Path, text: str) -> Iterator[tuple[int, Any]]:
  lines = io.StringIO(text, newline="").readlines()  # Line ends as the csv module sees them ('\r' too).
  try:
    header = next(csv.reader(lines[:1], strict=True), None)
  except csv.Error as e:
    raise BadRecordError(f"{path}:1: cannot read the header line: {e}") from e
  if not header or not any(h.strip() for h in header):
    raise BadRecordError(f"{path}: empty file (expected a header line with {', '.join(REQUIRED)}[, split])")
  names = [h.strip().lower() for h in header]
  missing = [k for k in REQUIRED if k not in names]
  if missing:
    raise BadRecordError(f"{path}:1: the header has no {' or '.join(repr(m) for m in missing)} column "
                         f"(columns: {header}); expected image,caption[,split][,class_name]")
  for start, values in _csv_records(lines, names.index("image")):
    if isinstance(values, Exception):
      yield start, values
    elif not any(v.strip() for v in values):
      continue
    elif len(values) > len(names):
      yield start, ValueError(f"{len(values)} fields but the header has {len(names)} (an unquoted comma in a "
                              "caption? quote it)")
    else:
      yield start, dict(zip(names, values))


def _jsonl_fields(text: str) -> Iterator[tuple[int, Any]]:
  for n, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    try:
      fields = json.loads(line)
    except json.JSONDecodeError as e:
      yield n, ValueError(f"malformed JSON at column {e.colno}: {e.msg}")
      continue
    yield n, fields if isinstance(fields, dict) else ValueError("not a JSON object")


def read_rows(path: epath.PathLike, policy: RecordPolicy) -> list[Row]:
  """The valid rows of a CSV or JSONL annotation file; bad ones go through `policy`."""
  path = epath.Path(path)
  if not path.exists():
    raise BadRecordError(f"{path}: annotation file not found")
  text = read_text(path).lstrip("\ufeff")  # Spreadsheets often write a UTF-8 byte-order mark.
  fields_iter = _csv_fields(path, text) if path.suffix.lower() == ".csv" else _jsonl_fields(text)
  rows, seen = [], 0
  with _field_limit(FIELD_LIMIT):
    for line, fields in fields_iter:
      seen += 1
      try:
        if isinstance(fields, Exception):
          raise fields
        rows.append(to_row(fields, line, path.parent))
      except ValueError as e:
        policy.reject(path, _label(line, fields), e.args[0])
  if not seen:
    raise BadRecordError(f"{path}: no rows: nothing to build")
  return rows


def merge(rows: list[Row], path: epath.Path, policy: RecordPolicy, check_images: bool = True) -> list[CaptionRecord]:
  """One CaptionRecord per image (first-appearance order); conflicting splits/classes and missing images go
  through `policy`."""
  by_image: dict[str, list[Row]] = {}
  for row in rows:
    by_image.setdefault(row.image, []).append(row)
  root, records = path.parent, []
  for image, group in by_image.items():
    label = f"image {image!r} (line{'s' if len(group) > 1 else ''} {', '.join(str(r.line) for r in group)})"
    splits = {r.split: r.line for r in group if r.split}
    classes = {r.class_name: r.line for r in group if r.class_name}
    if len(splits) > 1 or len(classes) > 1:
      what, values = ("split", splits) if len(splits) > 1 else ("class_name", classes)
      policy.reject(path, label, f"rows give different {what}s: " + ", ".join(
          f"{v!r} (line {n})" for v, n in values.items()))
      continue
    image_path = root / image
    if check_images and not image_path.exists():
      policy.reject(path, label, f"image not found: {image_path}")
      continue
    records.append(CaptionRecord(
        image_id=image, filename=image, split=next(iter(splits), "train"),
        captions=tuple(dict.fromkeys(r.caption for r in group)), class_name=next(iter(classes), ""),
        image_path=image_path, label=label, source=str(path)))
  return records


def parse(path: epath.PathLike, policy: RecordPolicy, check_images: bool = True) -> list[CaptionRecord]:
  """CSV/JSONL annotation file -> one CaptionRecord per image (see the module docstring)."""
  path = epath.Path(path)
  return merge(read_rows(path, policy), path, policy, check_images)
