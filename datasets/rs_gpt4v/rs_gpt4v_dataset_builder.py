"""RS-GPT4V (Xu et al. 2024): remote-sensing caption / VQA / grounding instructions (manual)."""
import collections
import dataclasses
import functools
from typing import Any, Iterator

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats
from rsvlm_datasets import rs_gpt4v_format as fmt


@dataclasses.dataclass(eq=False)
class RsGpt4vConfig(tfds.core.BuilderConfig):
  """skip_bad_records: skip and report; captions_only: caption rows grouped per image;
  bracket_scale: scale of `[x1, y1, x2, y2]` boxes ("auto", "unit", "percent", "permille", "pixel").
  """
  skip_bad_records: bool = False
  captions_only: bool = False
  bracket_scale: str = "auto"


def _qa_features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3)),
      "image_id": tfds.features.Text(),
      "source": tfds.features.Text(),
      "task": tfds.features.ClassLabel(names=fmt.TASKS),
      "turn": tfds.features.Scalar(np.int32),  # Index of the pair in its conversation (0: the first).
      "type": tfds.features.Text(),  # The question type field ("" without one).
      "instruction": tfds.features.Text(),
      "answer": tfds.features.Text(),
      "boxes": tfds.features.Sequence(tfds.features.BBoxFeature()),
  })


class Builder(tfds.core.GeneratorBasedBuilder):
  """RS-GPT4V: one example per (instruction, answer) pair, or per image in `captions` configs."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "1.1.0": "Tasks description, conversation and followup; task and type fields read; features "
                            "turn and type; skipped records counted by reason."}
  BUILDER_CONFIGS = [
      RsGpt4vConfig(name="default", description="All QA pairs; a bad record stops the build."),
      RsGpt4vConfig(name="lenient", skip_bad_records=True,
                    description="All QA pairs; bad records skipped and listed in metadata."),
      RsGpt4vConfig(name="captions", captions_only=True,
                    description="Caption rows grouped per image, caption-set features (strict)."),
      RsGpt4vConfig(name="captions_lenient", captions_only=True, skip_bad_records=True,
                    description="Caption rows grouped per image; bad records skipped."),
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download RS-GPT4V (arXiv 2406.12479) and arrange it in manual_dir as:
    manual_dir/
      train/*.json            # LLaVA-style lists:
                              #   [{"id", "image", "conversations": [{"from", "value"}, ...]}]
      test/<Source>.jsonl     # one per source, e.g. UCM-Captions.jsonl: question rows
                              #   {"question_id", "image", "text"} and answer rows
                              #   {"question_id", "answer"}
      images/                 # every "image" path is relative to this folder; a test image may also
                              # live under images/<Source>/ (Source = the JSONL file name)
  """

  def _info(self) -> tfds.core.DatasetInfo:
    captions = self.builder_config.captions_only
    return self.dataset_info_from_configs(
        features=caption_formats.caption_features() if captions else _qa_features(),
        homepage="https://arxiv.org/abs/2406.12479",
        metadata=tfds.core.MetadataDict(skipped_records=[], skipped_counts={}, task_counts={},
                                        malformed_boxes=[]))

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = epath.Path(dl_manager.manual_dir)
    policy = caption_formats.RecordPolicy(self.builder_config.skip_bad_records)
    self.info.metadata["skipped_records"] = policy.skipped  # Filled while examples are generated.
    self.info.metadata["skipped_counts"] = policy.counts  # {reason: number}, likewise.
    self.info.metadata["malformed_boxes"] = []  # Likewise: {"file", "record", "text"} per fragment.
    splits = {"train": _read(sorted((manual_dir / "train").glob("*.json")),
                             fmt.parse_train_json, policy),
              "test": _read(sorted((manual_dir / "test").glob("*.jsonl")),
                            fmt.parse_test_jsonl, policy)}
    if not any(splits.values()):
      raise FileNotFoundError(f"No RS-GPT4V annotations (train/*.json, test/*.jsonl) in "
                              f"{manual_dir}.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    images_dir = manual_dir / "images"
    items = {split: _with_images(records, images_dir, policy) for split, records in splits.items()}
    items["test"] = _drop_train_images(items["train"], items["test"], policy)
    if not any(items.values()):  # An empty build would be "not built" and "already built" at once.
      raise caption_formats.BadRecordError(
          f"{manual_dir}: no usable records in train/*.json, test/*.jsonl ({len(policy.skipped)} "
          "skipped): nothing to build")
    return {split: self._generate_examples(split, split_items, policy)
            for split, split_items in items.items() if split_items}

  def _generate_examples(self, split: str, items: list, policy: caption_formats.RecordPolicy):
    counts = collections.Counter()
    self.info.metadata["task_counts"][split] = counts  # A dict; filled while generating.
    load = _Loader(policy)
    if self.builder_config.captions_only:
      yield from _caption_examples(items, load, counts)
    else:
      yield from _qa_examples(items, load, policy, counts, self.builder_config.bracket_scale,
                              self.info.metadata["malformed_boxes"])
    policy.log_summary(f"{self.name}/{split}")


def _read(files, parse, policy) -> list[fmt.QARecord]:
  return [record for f in files for record in parse(f, policy)]


def _with_images(records: list[fmt.QARecord], images_dir: epath.Path,
                 policy: caption_formats.RecordPolicy) -> list[tuple[Any, epath.Path, str]]:
  """[(record, image path, image id)]; records whose image is missing go through `policy`."""
  resolve = functools.lru_cache(maxsize=None)(
      lambda image, source: fmt.resolve_image(images_dir, image, source))
  items = []
  for record in records:
    try:
      items.append((record, *resolve(record.image, record.source)))
    except (FileNotFoundError, ValueError) as e:
      policy.reject(record.file, record.label, e.args[0])
  return items


def _drop_train_images(train: list, test: list, policy: caption_formats.RecordPolicy) -> list:
  """Test items whose image file is also a train image go through `policy` (train and test must not
  share images)."""
  train_use = {}
  for record, path, _ in train:
    train_use.setdefault(str(path), record)
  kept = []
  for item in test:
    record, path, image_id = item
    if str(path) in train_use:
      first = train_use[str(path)]
      policy.reject(record.file, record.label, f"image {image_id} is in both train "
                    f"({first.file}: {first.label}) and test")
    else:
      kept.append(item)
  return kept


class _Loader:
  """Reads images (a few cached: consecutive QA pairs share them); failures go through `policy`."""

  def __init__(self, policy: caption_formats.RecordPolicy):
    self.policy = policy
    self.read = functools.lru_cache(maxsize=32)(caption_formats.read_image)

  def __call__(self, path: epath.Path, record: fmt.QARecord):
    try:
      return self.read(str(path))
    except (OSError, ValueError) as e:
      self.policy.reject(path, f"{record.file}: {record.label}", f"unreadable image: {e}")
      return None


def _qa_examples(items, load, policy, counts, bracket_scale,
                 malformed) -> Iterator[tuple[str, dict]]:
  """QA examples; box-like text of grounding records that is not a box is logged and listed in
  `malformed` (the record is kept with its valid boxes)."""
  for record, path, image_id in items:
    loaded = load(path, record)
    if loaded is None:
      continue
    task = fmt.record_task(record)
    try:
      boxes = fmt.record_boxes(record, loaded[1], bracket_scale, task)
    except ValueError as e:
      policy.reject(record.file, record.label, e.args[0])
      continue
    if task == "grounding":
      for text in fmt.malformed_boxes(record.answer) + fmt.malformed_boxes(record.instruction):
        logging.warning("Malformed box (not used): %s: %s: %r", record.file, record.label, text)
        malformed.append({"file": record.file, "record": record.label, "text": text})
    counts[task] += 1
    yield record.key, {"image": loaded[0], "image_id": image_id, "source": record.source,
                       "task": task, "turn": record.turn, "type": record.type,
                       "instruction": record.instruction, "answer": record.answer,
                       "boxes": [tfds.features.BBox(*b) for b in boxes]}


def _caption_examples(items, load, counts) -> Iterator[tuple[str, dict]]:
  """One example per image with the answers of its caption rows as `captions`."""
  groups = collections.defaultdict(list)
  for record, path, image_id in items:
    if fmt.record_task(record) == "caption":
      groups[(image_id, path)].append(record)
  for (image_id, path), records in groups.items():
    loaded = load(path, records[0])
    if loaded is None:
      continue
    counts["caption"] += len(records)
    yield image_id, {"image": loaded[0], "image_id": image_id, "filename": image_id,
                     "captions": [r.answer for r in records], "class_name": ""}
