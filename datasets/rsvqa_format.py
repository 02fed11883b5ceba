"""RSVQA-LR and RSVQA-HR (Lobry et al. 2020) as distributed: question / answer JSON, binning, the shared builder.

Files (one pair per split): {"questions": [{"id", "img_id", "type", "question", "answers_ids", "active"}]} and
{"answers": [{"id", "question_id", "answer", "active"}]}. Inactive questions and answers are skipped and
counted (the log and `info.metadata["inactive"]`). Each active question keeps its one active answer, binned as
the field reports it (`bin_answer`: RSVQA-LR counts and RSVQA-HR areas; other answers as they are) with the raw
answer beside it.

Bad records (the bad-record policy of `caption_formats`: the build stops naming the file and the record, or
with `skip_bad_records` the record is skipped, logged, listed in `info.metadata["skipped_records"]` and counted by
reason in `info.metadata["skipped_counts"]`): an
answer whose question is in no record of the split (an answer without its question), a question of an unknown
type, a question without an active answer or with several, an answer that is not in its question's
`answers_ids`, a count or area that is not a whole number, a missing field, a non-integer or duplicate id, a
missing or unreadable image. A file that is not JSON, or not of this shape, is always fatal.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import re
from typing import Any, Iterator

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from rsvlm_datasets.caption_formats import BadRecordError
from rsvlm_datasets.caption_formats import load_json
from rsvlm_datasets.caption_formats import read_image
from rsvlm_datasets.caption_formats import RecordPolicy

NUMERIC_TYPES = ("count", "area")
COUNT_BINS = ("0", "between 1 and 10", "between 11 and 100", "between 101 and 1000", "more than 1000")
AREA_BINS = ("0 m2", "between 1 m2 and 10 m2", "between 11 m2 and 100 m2", "between 101 m2 and 1000 m2",
             "more than 1000 m2")
_AREA = re.compile(r"\s*(\d+)\s*m(?:2|²)?\s*", re.I)
_COUNT = re.compile(r"\s*(\d+)\s*")


def _bin(value: int, bins: tuple[str, ...]) -> str:
  if value == 0:
    return bins[0]
  return bins[1] if value <= 10 else bins[2] if value <= 100 else bins[3] if value <= 1000 else bins[4]


def bin_answer(answer: str, question_type: str, binned_types: tuple[str, ...]) -> str:
  """The answer as scored: a `count` (RSVQA-LR) in COUNT_BINS, an `area` ("1234m2", RSVQA-HR) in AREA_BINS, when
  its type is in `binned_types`; any other answer unchanged. ValueError for a count / area that is not a
  non-negative whole number."""
  if question_type not in binned_types:
    return answer
  pattern, bins = (_AREA, AREA_BINS) if question_type == "area" else (_COUNT, COUNT_BINS)
  match = pattern.fullmatch(answer)
  if not match:
    raise ValueError(f"{question_type} answer {answer!r} is not a whole number"
                     + (" of m2" if question_type == "area" else ""))
  return _bin(int(match.group(1)), bins)


@dataclasses.dataclass(frozen=True)
class VqaRecord:
  question_id: int
  img_id: int
  type: str
  question: str
  answer: str  # Binned.
  raw_answer: str
  label: str  # How errors name the record.


def _records(path: epath.Path, key: str) -> list:
  data = load_json(path)
  if not isinstance(data, dict) or not isinstance(data.get(key), list):
    raise BadRecordError(f"{path}: expected an object with a {key!r} list")
  return data[key]


def _int(entry: dict, key: str) -> int:
  if key not in entry:
    raise KeyError(f"missing field {key!r} (fields: {sorted(entry)})")
  value = entry[key]
  if isinstance(value, bool) or not isinstance(value, int):
    raise ValueError(f"field {key!r} is {value!r}, not an integer")
  return value


def _str(entry: dict, key: str) -> str:
  if key not in entry:
    raise KeyError(f"missing field {key!r} (fields: {sorted(entry)})")
  if not isinstance(entry[key], str) or not entry[key].strip():
    raise ValueError(f"field {key!r} is {entry[key]!r}, not a non-empty string")
  return entry[key].strip()


def _label(kind: str, index: int, entry: Any) -> str:
  return f"{kind}[{index}] id={entry.get('id')!r}" if isinstance(entry, dict) else f"{kind}[{index}]"


def _active_answers(path: epath.Path, policy: RecordPolicy, counts) -> dict[int, list[tuple[int, str, str]]]:
  """{question_id: [(answer id, answer, label)]} of the active answers."""
  out, seen = collections.defaultdict(list), set()
  for i, entry in enumerate(_records(path, "answers")):
    label = _label("answers", i, entry)
    try:
      if not isinstance(entry, dict):
        raise ValueError("record is not an object")
      if not entry.get("active", True):
        counts["inactive answers"] += 1
        continue
      aid, qid, answer = _int(entry, "id"), _int(entry, "question_id"), _str(entry, "answer")
      if aid in seen:
        raise ValueError(f"duplicate answer id {aid}")
    except (KeyError, ValueError) as e:
      policy.reject(path, label, e.args[0])
      continue
    seen.add(aid)
    out[qid].append((aid, answer, label))
  return out


def _question(entry: Any, types: tuple[str, ...]) -> tuple[int, int, str, str, list]:
  if not isinstance(entry, dict):
    raise ValueError("record is not an object")
  qid, img_id = _int(entry, "id"), _int(entry, "img_id")
  kind, question = _str(entry, "type"), _str(entry, "question")
  if kind not in types:
    raise ValueError(f"unknown question type {kind!r} (expected one of {list(types)})")
  answer_ids = entry.get("answers_ids", [])
  if not isinstance(answer_ids, list):
    raise ValueError(f"field 'answers_ids' is {answer_ids!r}, not a list")
  return qid, img_id, kind, question, answer_ids


def parse_split(questions_path: epath.PathLike, answers_path: epath.PathLike, types: tuple[str, ...],
                binned_types: tuple[str, ...], policy: RecordPolicy,
                counts: collections.Counter) -> list[VqaRecord]:
  """The active (question, answer) records of one split; see the module doc. `counts` gets the numbers of
  inactive questions and answers."""
  questions_path, answers_path = epath.Path(questions_path), epath.Path(answers_path)
  answers = _active_answers(answers_path, policy, counts)
  records, known, seen = [], set(), set()
  for i, entry in enumerate(_records(questions_path, "questions")):
    label = _label("questions", i, entry)
    if isinstance(entry, dict) and "id" in entry:
      known.add(entry["id"])  # Even when inactive or bad: its answers are not orphans.
    try:
      if isinstance(entry, dict) and not entry.get("active", True):
        counts["inactive questions"] += 1
        continue
      qid, img_id, kind, question, answer_ids = _question(entry, types)
      if qid in seen:
        raise ValueError(f"duplicate question id {qid}")
      seen.add(qid)
      found = answers.get(qid, [])
      if len(found) != 1:
        raise ValueError("no active answer" if not found else
                         f"{len(found)} active answers ({', '.join(a[2] for a in found)})")
      aid, raw, _ = found[0]
      if answer_ids and aid not in answer_ids:
        raise ValueError(f"its answer id {aid} is not in answers_ids {answer_ids}")
      records.append(VqaRecord(qid, img_id, kind, question, bin_answer(raw, kind, binned_types), raw, label))
    except (KeyError, ValueError) as e:
      policy.reject(questions_path, label, e.args[0])
  for qid, found in answers.items():
    if qid not in known:
      for _, _, label in found:
        policy.reject(answers_path, label, f"answer without its question (question_id {qid} is in no record "
                      f"of {questions_path.name})")
  return records


def _with_images(records: list[VqaRecord], image_dir: epath.Path, ext: str, questions_path: epath.Path,
                 policy: RecordPolicy) -> list[VqaRecord]:
  """The records whose image exists (checked once per image); the others go through `policy`."""
  exists = functools.lru_cache(maxsize=None)(lambda img_id: (image_dir / f"{img_id}{ext}").exists())
  kept = []
  for r in records:
    if exists(r.img_id):
      kept.append(r)
    else:
      policy.reject(questions_path, r.label, f"image not found: {image_dir / f'{r.img_id}{ext}'}")
  return kept


# --------------------------------------------------------------------------- builder


@dataclasses.dataclass(eq=False)
class RsvqaConfig(tfds.core.BuilderConfig):
  """nonum: without the numeric questions (count, area); skip_bad_records: skip and report bad records."""
  nonum: bool = False
  skip_bad_records: bool = False


def rsvqa_configs() -> list[RsvqaConfig]:
  return [
      RsvqaConfig(name="all", description="Every active question; a bad record stops the build."),
      RsvqaConfig(name="nonum", nonum=True, description="Without count and area questions (PaliGemma's "
                  "'nonum' RSVQA numbers); a bad record stops the build."),
      RsvqaConfig(name="all_lenient", skip_bad_records=True,
                  description="Every active question; bad records skipped and listed in metadata."),
      RsvqaConfig(name="nonum_lenient", nonum=True, skip_bad_records=True,
                  description="Without count and area questions; bad records skipped."),
  ]


def vqa_features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3)),
      "question": tfds.features.Text(),
      "answer": tfds.features.Text(),  # Binned (count / area), as scored.
      "raw_answer": tfds.features.Text(),
      "type": tfds.features.Text(),
      "question_id": tfds.features.Scalar(dtype=np.int64),
      "img_id": tfds.features.Scalar(dtype=np.int64),
  })


class RsvqaBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of rsvqa_lr and rsvqa_hr: FILE_PREFIX, SPLITS {tfds split: file split}, IMAGE_DIR, IMAGE_EXT, TYPES,
  BINNED_TYPES."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = rsvqa_configs()
  DEFAULT_BUILDER_CONFIG_NAME = "all"
  FILE_PREFIX = ""
  SPLITS: dict[str, str] = {}
  IMAGE_DIR = ""
  IMAGE_EXT = ""
  TYPES: tuple[str, ...] = ()
  BINNED_TYPES: tuple[str, ...] = ()
  HOMEPAGE = "https://rsvqa.sylvainlobry.com/"

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=vqa_features(), homepage=self.HOMEPAGE,
        metadata=tfds.core.MetadataDict(skipped_records=[], skipped_counts={}, inactive={}, type_counts={}))

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = epath.Path(dl_manager.manual_dir)
    policy = RecordPolicy(self.builder_config.skip_bad_records)
    self.info.metadata["skipped_records"] = policy.skipped  # Filled while examples are generated.
    self.info.metadata["skipped_counts"] = policy.counts  # {reason: number}, likewise.
    splits = {}
    for split, name in self.SPLITS.items():
      questions = manual_dir / f"{self.FILE_PREFIX}_{name}_questions.json"
      answers = manual_dir / f"{self.FILE_PREFIX}_{name}_answers.json"
      if not questions.exists() and not answers.exists():
        continue
      counts = collections.Counter()
      records = parse_split(questions, answers, self.TYPES, self.BINNED_TYPES, policy, counts)
      self.info.metadata["inactive"][split] = dict(counts)
      logging.info("%s/%s: %d question(s); skipped %s", self.name, split, len(records), dict(counts) or "none")
      if self.builder_config.nonum:
        kept = [r for r in records if r.type not in NUMERIC_TYPES]
        logging.info("%s/%s: nonum leaves out %d count/area question(s)", self.name, split,
                     len(records) - len(kept))
        records = kept
      splits[split] = _with_images(records, manual_dir / self.IMAGE_DIR, self.IMAGE_EXT, questions, policy)
    if not splits:
      raise FileNotFoundError(f"No {self.FILE_PREFIX}_*_questions.json in {manual_dir}.\n"
                              f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    if not any(splits.values()):  # An empty build would be "not built" and "already built" at once.
      raise BadRecordError(f"{manual_dir}: no usable questions ({len(policy.skipped)} skipped): nothing to build")
    return {split: self._generate_examples(split, records, manual_dir / self.IMAGE_DIR, policy)
            for split, records in splits.items() if records}

  def _generate_examples(self, split: str, records: list[VqaRecord], image_dir: epath.Path,
                         policy: RecordPolicy) -> Iterator[tuple[int, dict]]:
    types = collections.Counter()
    self.info.metadata["type_counts"][split] = types  # Filled while generating.
    read = functools.lru_cache(maxsize=8)(read_image)
    for r in sorted(records, key=lambda r: (r.img_id, r.question_id)):  # Questions of one image together.
      path = image_dir / f"{r.img_id}{self.IMAGE_EXT}"
      try:
        image, _ = read(str(path))
      except (OSError, ValueError) as e:
        policy.reject(path, r.label, f"unreadable image: {e}")
        continue
      types[r.type] += 1
      yield r.question_id, {"image": image, "question": r.question, "answer": r.answer,
                            "raw_answer": r.raw_answer, "type": r.type, "question_id": r.question_id,
                            "img_id": r.img_id}
    policy.log_summary(f"{self.name}/{split}")
