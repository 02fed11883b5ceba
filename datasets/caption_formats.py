"""Caption-set annotations (Karpathy JSON, NWPU JSON), their validation and the bad-record policy.

Bad-record policy: a missing or unreadable image, a missing field, an empty caption, a duplicate id,
an unknown split, an image path that leaves the image folder (absolute, or `..` above it) or an
image used in two splits stops the build with a `BadRecordError` naming the file and the record.
With `skip_bad_records=True` the record is skipped instead (an escaping path is never read), logged
with absl, and listed in the dataset's `info.metadata["skipped_records"]` (a list of {"file",
"record", "reason"}). A file that is not valid UTF-8 JSON at all, or that has no records, is always
fatal: nothing in it can be trusted.

The caption builders share `CaptionBuilder` (and its features: the contract the training
pipeline relies on): image, image_id, filename, captions, class_name.
"""
import collections
import dataclasses
import io
import json
import posixpath
import re
from typing import Any, Callable, Iterable, Iterator

from absl import logging
from etils import epath
from PIL import Image
import tensorflow_datasets as tfds

from rsvlm_jax.data import image_io

SPLITS = {"train": "train", "val": "validation", "test": "test"}
NWPU_CAPTION_FIELDS = ("raw", "raw_1", "raw_2", "raw_3", "raw_4")


class BadRecordError(ValueError):
  """An annotation record (or file) that cannot be used."""


@dataclasses.dataclass(frozen=True)
class BadRecord:
  file: str
  record: str
  reason: str

  def __str__(self):
    return f"{self.file}: {self.record}: {self.reason}"


def reason_kind(reason: str) -> str:
  """The kind of a bad-record reason, without its values: "unknown task 'x' (expected ...)" -> "unknown task",
  "box [1, 2, 3, 4] (bracket) outside the image" -> "box outside the image", "image not found: P" -> "image not
  found"."""
  head = reason.split(": ")[0]
  head = re.sub(r"\[[^\]]*\]|\([^)]*\)|'[^']*'|\"[^\"]*\"|-?\d+(\.\d+)?", " ", head)
  return " ".join(head.split()).replace(" ,", ",").strip(" ,") or reason


class RecordPolicy:
  """Raises on the first bad record (strict), or logs and collects it (skip_bad_records)."""

  def __init__(self, skip_bad_records: bool = False):
    self.skip_bad_records = skip_bad_records
    self.skipped: list[dict[str, str]] = []  # JSON-ready; shared with info.metadata.
    self.counts: collections.Counter = collections.Counter()  # reason_kind(reason) -> number skipped.

  def reject(self, file: Any, record: str, reason: str) -> None:
    bad = BadRecord(str(file), record, reason)
    if not self.skip_bad_records:
      raise BadRecordError(f"{bad} (set skip_bad_records / use the 'lenient' config to skip)")
    logging.warning("Skipping bad record: %s", bad)
    self.skipped.append(dataclasses.asdict(bad))
    self.counts[reason_kind(reason)] += 1

  def log_summary(self, what: str) -> None:
    if self.skipped:
      logging.warning("%s: %d bad record(s) skipped so far: %s", what, len(self.skipped),
                      [f"{r['file']}: {r['record']}" for r in self.skipped])


@dataclasses.dataclass(frozen=True)
class CaptionRecord:
  image_id: str
  filename: str
  split: str  # TFDS split name: train / validation / test.
  captions: tuple[str, ...]
  class_name: str
  image_path: epath.Path
  label: str  # How errors name the record.
  source: str  # Annotation file.


# --------------------------------------------------------------------------- JSON files


def read_text(path: epath.Path) -> str:
  """The text of an annotation file; a file that is not UTF-8 is a BadRecordError naming it."""
  try:
    return path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    byte = e.object[e.start:e.start + 1]
    raise BadRecordError(f"{path}: not UTF-8 text (byte {e.start}: {byte!r}); re-save the "
                         "annotation file as UTF-8") from e


def load_json(path: epath.Path) -> Any:
  """Parses a whole JSON file; a syntax error names the file, line and column."""
  path = epath.Path(path)
  if not path.exists():
    raise BadRecordError(f"{path}: annotation file not found")
  try:
    return json.loads(read_text(path))
  except json.JSONDecodeError as e:
    raise BadRecordError(f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from e


def inside(root: epath.Path, relative: str) -> epath.Path:
  """root / relative, refusing (ValueError) a path that is absolute or whose `..` leave root.

  The check is on the text of the path, so a symlinked image folder still works.
  """
  norm = posixpath.normpath(relative.replace("\\", "/"))  # A backslash counts as a separator here.
  if posixpath.isabs(norm) or norm == ".." or norm.startswith("../"):
    raise ValueError(f"image path {relative!r} leaves the image folder {root}; refusing to read it")
  return root / relative


def text_field(entry: dict, key: str) -> str:
  """Returns a stripped non-empty string field, or raises KeyError / ValueError."""
  if key not in entry:
    raise KeyError(f"missing field {key!r} (fields: {sorted(entry)})")
  value = entry[key]
  if not isinstance(value, str):
    raise ValueError(f"field {key!r} is {type(value).__name__}, not a string")
  if not value.strip():
    raise ValueError(f"empty {key!r}")
  return value.strip()


# --------------------------------------------------------------------------- Karpathy JSON


def class_from_filename(filename: str) -> str:
  """'denseresidential_12.jpg' -> 'denseresidential'; '00012.jpg' -> '' (RSICD/RSITMD names)."""
  match = re.fullmatch(r"([A-Za-z][A-Za-z ]*?)_\d+", epath.Path(filename).stem)
  return match.group(1).lower() if match else ""


def _karpathy_label(index: int, entry: Any) -> str:
  if not isinstance(entry, dict):
    return f"images[{index}]"
  return f"images[{index}] imgid={entry.get('imgid')!r} filename={entry.get('filename')!r}"


def _karpathy_captions(entry: dict) -> tuple[str, ...]:
  sentences = entry.get("sentences")
  if not isinstance(sentences, list) or not sentences:
    raise ValueError("missing field 'sentences' or no sentences")
  captions = []
  for j, sentence in enumerate(sentences):
    if not isinstance(sentence, dict):
      raise ValueError(f"sentences[{j}] is not an object")
    try:
      captions.append(text_field(sentence, "raw"))
    except (KeyError, ValueError) as e:
      raise ValueError(f"sentences[{j}] (sentid={sentence.get('sentid')!r}): {e.args[0]}") from e
  return tuple(captions)


def _karpathy_record(entry: Any, image_dir: epath.Path,
                     class_fn: Callable[[str], str]) -> CaptionRecord:
  """Validates one Karpathy image entry; raises KeyError/ValueError with the reason."""
  if not isinstance(entry, dict):
    raise ValueError("record is not an object")
  filename = text_field(entry, "filename")
  if "imgid" not in entry:
    raise KeyError(f"missing field 'imgid' (fields: {sorted(entry)})")
  split = text_field(entry, "split")
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r} (expected one of {sorted(SPLITS)})")
  return CaptionRecord(image_id=str(entry["imgid"]), filename=filename, split=SPLITS[split],
                       captions=_karpathy_captions(entry), class_name=class_fn(filename),
                       image_path=inside(image_dir, filename), label="", source="")


def parse_karpathy(json_path: epath.PathLike, image_dir: epath.PathLike, policy: RecordPolicy,
                   class_fn: Callable[[str], str] = lambda _: "",
                   check_images: bool = True) -> list[CaptionRecord]:
  """Reads {"images": [{"filename", "imgid", "split", "sentences": [{"raw", ...}]}]}."""
  json_path, image_dir = epath.Path(json_path), epath.Path(image_dir)
  data = load_json(json_path)
  if not isinstance(data, dict) or not isinstance(data.get("images"), list):
    raise BadRecordError(f"{json_path}: expected an object with an 'images' list")
  if not data["images"]:
    raise BadRecordError(f"{json_path}: the 'images' list is empty: nothing to build")
  records = []
  for i, entry in enumerate(data["images"]):
    label = _karpathy_label(i, entry)
    try:
      record = _karpathy_record(entry, image_dir, class_fn)
    except (KeyError, ValueError) as e:
      policy.reject(json_path, label, e.args[0])
      continue
    records.append(dataclasses.replace(record, label=label, source=str(json_path)))
  return _check_records(records, policy, check_images)


# --------------------------------------------------------------------------- NWPU JSON


def _nwpu_record(class_name: str, entry: Any, image_root: epath.Path) -> CaptionRecord:
  if not isinstance(entry, dict):
    raise ValueError("record is not an object")
  filename = text_field(entry, "filename")
  split = text_field(entry, "split")
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r} (expected one of {sorted(SPLITS)})")
  captions = tuple(text_field(entry, key) for key in NWPU_CAPTION_FIELDS)
  image_id = str(entry["imgid"]) if "imgid" in entry else f"{class_name}/{filename}"
  return CaptionRecord(image_id=image_id, filename=filename, split=SPLITS[split],
                       captions=captions, class_name=class_name,
                       image_path=inside(image_root, f"{class_name}/{filename}"), label="",
                       source="")


def parse_nwpu(json_path: epath.PathLike, image_root: epath.PathLike,
               policy: RecordPolicy) -> list[CaptionRecord]:
  """Reads {class: [{"filename", "split", "raw", "raw_1".."raw_4", ...}]}; images in root/class/."""
  json_path, image_root = epath.Path(json_path), epath.Path(image_root)
  data = load_json(json_path)
  if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
    raise BadRecordError(f"{json_path}: expected an object mapping class names to lists")
  if not any(data.values()):
    raise BadRecordError(f"{json_path}: no records (every class list is empty): nothing to build")
  records = []
  for class_name, entries in data.items():
    for i, entry in enumerate(entries):
      filename = entry.get("filename") if isinstance(entry, dict) else None
      label = f"{class_name}[{i}] filename={filename!r}"
      try:
        record = _nwpu_record(class_name, entry, image_root)
      except (KeyError, ValueError) as e:
        policy.reject(json_path, label, e.args[0])
        continue
      records.append(dataclasses.replace(record, label=label, source=str(json_path)))
  return _check_records(records, policy)


# --------------------------------------------------------------------------- shared checks


def _check_records(records: Iterable[CaptionRecord], policy: RecordPolicy,
                   check_images: bool = True) -> list[CaptionRecord]:
  """Rejects duplicate image ids, an image file used in two splits and (if check_images) missing
  images."""
  seen, first_use, kept = set(), {}, []
  for record in records:
    split, label = first_use.get(str(record.image_path), (record.split, ""))
    if record.image_id in seen:
      policy.reject(record.source, record.label, f"duplicate image id {record.image_id!r}")
    elif split != record.split:
      policy.reject(record.source, record.label,
                    f"image {record.filename} is in both {split} ({label}) and {record.split}")
    elif check_images and not record.image_path.exists():
      policy.reject(record.source, record.label, f"image not found: {record.image_path}")
    else:
      seen.add(record.image_id)
      first_use.setdefault(str(record.image_path), (record.split, record.label))
      kept.append(record)
  return kept


# Builds keep images at their native size; 16-bit/float/multi-band files get image_io's documented stretch,
# and anything above max_pixels is a bad record (named and counted), never a raw DecompressionBombError.
BUILD_READ_OPTIONS = image_io.ReadOptions(max_side=1 << 30)


def read_image(path: epath.PathLike) -> tuple[bytes, tuple[int, int]]:
  """Returns (encoded RGB image, (width, height)): upright 8-bit RGB JPEG bytes as-is, anything else decoded by
  rsvlm_jax.data.image_io (16-bit and float data stretched, bands chosen, EXIF orientation applied, as
  documented there) and stored as PNG (lossless: a JPEG turned upright is not recompressed).

  Raises OSError / ValueError (image_io.ImageReadError) for an unreadable or oversized image. Encoding here
  (with PIL) keeps the build free of TensorFlow.
  """
  data = epath.Path(path).read_bytes()
  fmt, mode, size = image_io.probe_bytes(data, str(path))
  if fmt == "JPEG" and mode == "RGB" and size[0] * size[1] <= BUILD_READ_OPTIONS.max_pixels:
    with Image.open(io.BytesIO(data)) as img:
      img.load()  # A truncated JPEG fails here, as a bad record.
      upright = image_io.exif_orientation(img) == 1
    if upright:  # Training decodes the JPEG ignoring EXIF, so a turned one is stored turned upright.
      return data, size
  array = image_io.decode_bytes(data, str(path), BUILD_READ_OPTIONS)
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue(), (array.shape[1], array.shape[0])


def stems(records: Iterable[CaptionRecord], split: str) -> set[str]:
  """Lower-case filename stems of a split ('airport_1.jpg' and 'airport_1.tif' match)."""
  return {epath.Path(r.filename).stem.lower() for r in records if r.split == split}


def drop_overlap(records: list[CaptionRecord], other_train: set[str],
                 split: str = "test") -> tuple[list[CaptionRecord], list[str]]:
  """Drops `split` records whose filename stem is in `other_train`; returns (kept, dropped)."""
  kept, dropped = [], []
  for r in records:
    if r.split == split and epath.Path(r.filename).stem.lower() in other_train:
      dropped.append(r.filename)
    else:
      kept.append(r)
  return kept, dropped


# --------------------------------------------------------------------------- builders


@dataclasses.dataclass(eq=False)
class CaptionConfig(tfds.core.BuilderConfig):
  """skip_bad_records: skip and report bad records; dedup: drop test images in other's train."""
  skip_bad_records: bool = False
  dedup: bool = False


def caption_configs(with_dedup: bool = False, other: str = "") -> list[CaptionConfig]:
  """`default` (strict) and `lenient`; with_dedup adds `dedup` and `dedup_lenient`."""
  configs = [
      CaptionConfig(name="default", description="Strict: a bad record stops the build."),
      CaptionConfig(name="lenient", skip_bad_records=True,
                    description="Bad records skipped, logged and listed in metadata."),
  ]
  if with_dedup:
    desc = f"Test images whose filename is also in {other}'s train split removed"
    configs += [
        CaptionConfig(name="dedup", dedup=True, description=f"{desc} (strict)."),
        CaptionConfig(name="dedup_lenient", dedup=True, skip_bad_records=True,
                      description=f"{desc}; bad records skipped."),
    ]
  return configs


def caption_features() -> tfds.features.FeaturesDict:
  """The caption-set contract: image, image_id, filename, captions, class_name ('' if unknown)."""
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3)),
      "image_id": tfds.features.Text(),
      "filename": tfds.features.Text(),
      "captions": tfds.features.Sequence(tfds.features.Text()),
      "class_name": tfds.features.Text(),
  })


def caption_examples(records: Iterable[CaptionRecord],
                     policy: RecordPolicy, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
  """Yields (image_id, example); unreadable images go through `policy`."""
  for r in records:
    try:
      image, _ = read_image(r.image_path)
    except (OSError, ValueError) as e:
      policy.reject(r.image_path, r.label, f"unreadable image: {e}")
      continue
    yield r.image_id, {"image": image, "image_id": r.image_id, "filename": r.filename,
                       "captions": list(r.captions), "class_name": r.class_name}
  policy.log_summary(what)


def find_annotation(manual_dir: epath.Path, filename: str, dataset: str) -> epath.Path:
  """Finds another dataset's annotation file: manual_dir/f, manual_dir/dataset/f, ../dataset/f."""
  candidates = [manual_dir / filename, manual_dir / dataset / filename,
                manual_dir.parent / dataset / filename]
  for path in candidates:
    if path.exists():
      return path
  raise FileNotFoundError(
      f"The 'dedup' configs need {dataset}'s {filename}; looked in: "
      + ", ".join(map(str, candidates)))


class CaptionBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the caption sets; reads Karpathy JSON unless a subclass overrides `_records`."""

  ANNOTATION_FILE = ""
  IMAGE_DIR = ""
  HOMEPAGE = ""
  CLASS_FROM_FILENAME = False
  DEDUP_AGAINST = None  # (dataset name, its annotation file) for the `dedup` configs.

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=caption_features(), homepage=self.HOMEPAGE,
        metadata=tfds.core.MetadataDict(skipped_records=[], dedup_dropped=[]))

  def _policy(self) -> RecordPolicy:
    policy = RecordPolicy(self.builder_config.skip_bad_records)
    self.info.metadata["skipped_records"] = policy.skipped  # Filled while examples are generated.
    return policy

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = epath.Path(dl_manager.manual_dir)
    policy = self._policy()
    records = self._records(manual_dir, policy)
    if self.builder_config.dedup:
      records = self._dedup(manual_dir, records)
    if not records:  # An empty build would be "not built" and "already built" at once.
      raise BadRecordError(f"{manual_dir / self.ANNOTATION_FILE}: no usable records "
                           f"({len(policy.skipped)} skipped): nothing to build")
    by_split = {split: [r for r in records if r.split == split] for split in SPLITS.values()}
    # A split with no record (e.g. no "val" in the JSON) is left out rather than written empty.
    return {split: self._generate_examples(rs, policy, f"{self.name}/{split}")
            for split, rs in by_split.items() if rs}

  def _generate_examples(self, records, policy, what):
    yield from caption_examples(records, policy, what)

  def _records(self, manual_dir: epath.Path, policy: RecordPolicy) -> list[CaptionRecord]:
    class_fn = class_from_filename if self.CLASS_FROM_FILENAME else (lambda _: "")
    return parse_karpathy(manual_dir / self.ANNOTATION_FILE, manual_dir / self.IMAGE_DIR, policy,
                          class_fn)

  def _dedup(self, manual_dir: epath.Path, records: list[CaptionRecord]) -> list[CaptionRecord]:
    other, filename = self.DEDUP_AGAINST
    # The other file only provides names (its images need not be present); its bad records are
    # logged and ignored, never fatal here.
    other_records = parse_karpathy(find_annotation(manual_dir, filename, other), manual_dir,
                                   RecordPolicy(skip_bad_records=True), check_images=False)
    kept, dropped = drop_overlap(records, stems(other_records, "train"))
    logging.info("%s: dropped %d test image(s) also in %s train: %s", self.name, len(dropped),
                 other, dropped)
    self.info.metadata["dedup_dropped"] = dropped
    return kept

