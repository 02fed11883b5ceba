"""Zero-shot scene classification: class embeddings from prompt ensembles, top-1/top-5, per-class recall.

A class's embedding is the mean of its L2-normalised template embeddings, normalised again (the CLIP / open_clip
protocol RemoteCLIP and GeoRSCLIP report with); logits = 100 * image @ classes. Labelled image sets:
`folder:PATH` (one subfolder per class, the layout of AID, WHU-RS19, RSSCN7, PatternNet; a folder name such as
"BaseballField" or "dense_residential" becomes "baseball field" / "dense residential"; hidden folders and files,
".ipynb_checkpoints" or "._x.jpg", are skipped and counted; a class folder without images is refused unless
`empty_classes` says to drop or keep it) or `tfds:NAME` (uc_merced, eurosat/rgb, resisc45 or any TFDS set with
"image" and a ClassLabel "label", already built: nothing is ever downloaded). Classification needs >= 2 classes.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Sequence

from absl import logging
import numpy as np

from rsvlm_jax.data import image_io
from rsvlm_jax.evaluate import zero_shot_templates


def class_name(folder: str) -> str:
  """'BaseballField' / 'dense_residential' / 'storage-tanks' -> 'baseball field' / ... (lowercase, spaced)."""
  name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", folder)
  return " ".join(re.sub(r"[_\-]+", " ", name).lower().split())


EMPTY_CLASSES = ("error", "drop", "keep")
TOP_K = 5


@dataclasses.dataclass
class LabelledImages:
  """Names of the classes, a label and an identifier per image, and a loader of image batches."""
  classnames: list[str]
  labels: np.ndarray
  ids: list[str]
  load: Callable[[Sequence[int]], list[Any]]  # indices -> images (paths are read by the caller's model).
  notes: list[str] = dataclasses.field(default_factory=list)  # What was skipped, dropped or kept, for the report.


def _is_hidden(name: str) -> bool:
  return name.startswith(".")


def _class_images(folder: str) -> tuple[list[str], int]:
  """The image files under `folder` (recursively, sorted) and how many hidden files and folders were skipped."""
  found, hidden = [], 0
  for dirpath, dirnames, filenames in os.walk(folder):
    hidden += sum(map(_is_hidden, dirnames + filenames))
    dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
    found += [os.path.join(dirpath, f) for f in filenames
              if not _is_hidden(f) and f.lower().endswith(image_io.IMAGE_EXTENSIONS)]
  return sorted(found), hidden


def folder_dataset(root: str, empty_classes: str = "error") -> LabelledImages:
  """ROOT/CLASS/**/*.jpg; `empty_classes`: "error" (refuse class folders without images), "drop" (leave them
  out of the label set) or "keep" (keep them as classes no image has, competing in the argmax)."""
  if empty_classes not in EMPTY_CLASSES:
    raise ValueError(f"--empty_classes {empty_classes!r}: expected one of {', '.join(EMPTY_CLASSES)}")
  if not os.path.isdir(root):
    raise FileNotFoundError(f"folder:{root} is not a directory")
  folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
  notes = []
  hidden = [d for d in folders if _is_hidden(d)]
  if hidden:
    notes.append(f"skipped {len(hidden)} hidden folder(s): {', '.join(hidden)}")
  classes = [d for d in folders if not _is_hidden(d)]
  images = {}
  skipped = 0
  for d in classes:
    images[d], n = _class_images(os.path.join(root, d))
    skipped += n
  if skipped:
    notes.append(f"skipped {skipped} hidden file(s) and folder(s) inside the class folders")
  empty = [d for d in classes if not images[d]]
  if len(empty) == len(classes):
    raise FileNotFoundError(f"folder:{root} has no class subfolders with images (expected ROOT/CLASS/*.jpg)")
  if empty and empty_classes == "error":
    raise ValueError(f"folder:{root}: {len(empty)} class folder(s) hold no images: {', '.join(empty)}; remove "
                     "them, or pass --empty_classes=drop (leave them out of the label set) or --empty_classes=keep "
                     "(keep them as classes no image has, competing in the argmax)")
  if empty:
    verb = "dropped from the label set" if empty_classes == "drop" else "kept as classes no image has"
    notes.append(f"{len(empty)} class folder(s) without images {verb}: {', '.join(empty)}")
    if empty_classes == "drop":
      classes = [d for d in classes if images[d]]
  for note in notes:
    logging.warning("folder:%s: %s", root, note)
  files = [f for d in classes for f in images[d]]
  labels = [k for k, d in enumerate(classes) for _ in images[d]]
  return LabelledImages([class_name(c) for c in classes], np.asarray(labels, np.int64), files,
                        lambda idx: [files[i] for i in idx], notes)


def build_command(name: str, data_dir: str) -> str:
  """How to build tfds:`name` into `data_dir`: our builders through rsvlm_jax.build_dataset, others with TFDS."""
  try:
    import rsvlm_datasets  # pylint: disable=g-import-not-at-top
    ours = name.split("/")[0].split(":")[0] in rsvlm_datasets.BUILDER_MODULES
  except ImportError:
    ours = False
  if ours:
    return f"python -m rsvlm_jax.build_dataset {name} --data_dir={data_dir} [--manual_dir=RAW_FILES]"
  return f"tfds build {name} --data_dir={data_dir} --file_format=array_record  (TFDS's CLI, needs TensorFlow)"


def tfds_dataset(name: str, data_dir: str = "", split: str = "", label_key: str = "label") -> LabelledImages:
  """A TFDS set already built (array_record) in `data_dir`; never downloads: errors say how to build it."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  root = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else tfds.core.constants.get_default_data_dir()
  not_built = (f"tfds:{name} is not built in {root} (zero-shot never downloads a dataset); build it first with: "
               f"{build_command(name, root)}")
  try:
    builder = tfds.builder(name, data_dir=root)
  except tfds.core.DatasetNotFoundError as e:
    if build_command(name, root).startswith("python"):  # One of ours, registered only once imported or built.
      raise FileNotFoundError(not_built) from e
    raise ValueError(f"tfds:{name} is neither a TFDS catalog dataset nor built in {root}") from e
  if not builder.is_prepared():
    raise FileNotFoundError(not_built)
  formats = (tfds.core.FileFormat.ARRAY_RECORD, tfds.core.FileFormat.PARQUET)
  if builder.info.file_format not in formats:
    raise ValueError(f"tfds:{name} in {builder.data_dir} is stored as {builder.info.file_format.value}, which "
                     f"allows no random access; rebuild it as array_record: {build_command(name, root)}")
  if label_key not in builder.info.features or not hasattr(builder.info.features[label_key], "names"):
    raise ValueError(f"tfds:{name} has no ClassLabel feature {label_key!r} (features: "
                     f"{sorted(builder.info.features)}); pass --label_key")
  splits = list(builder.info.splits)
  if split and split not in splits:
    raise ValueError(f"tfds:{name} has no split {split!r} (splits: {', '.join(splits)}); pass --split")
  split = split or ("test" if "test" in splits else splits[0])
  source = builder.as_data_source(split=split)
  feature = builder.info.features[label_key]
  labels = np.asarray([int(source[i][label_key]) for i in range(len(source))], np.int64)
  ids = [f"{name}/{split}/{i}" for i in range(len(source))]
  return LabelledImages([class_name(n) for n in feature.names], labels, ids,
                        lambda idx: [np.asarray(source[int(i)]["image"]) for i in idx])


def dataset(spec: str, data_dir: str = "", split: str = "", label_key: str = "label",
            empty_classes: str = "error") -> LabelledImages:
  """`folder:PATH` or `tfds:NAME` with at least two classes; errors name the spec."""
  kind, _, rest = spec.partition(":")
  if kind == "folder" and rest:
    data = folder_dataset(rest, empty_classes)
  elif kind == "tfds" and rest:
    data = tfds_dataset(rest, data_dir, split, label_key)
  else:
    raise ValueError(f"--dataset {spec!r}: expected folder:PATH or tfds:NAME (e.g. tfds:uc_merced, tfds:eurosat/rgb)")
  if len(data.classnames) < 2:
    raise ValueError(f"--dataset {spec}: {len(data.classnames)} class ({', '.join(data.classnames)}); zero-shot "
                     "classification needs at least 2 classes")
  return data


def class_embeddings(encode_texts: Callable[[list[str]], np.ndarray], classnames: Sequence[str],
                     templates: Sequence[str]) -> np.ndarray:
  """[C, E]: per class, the renormalised mean of its normalised template embeddings."""
  out = []
  for name in classnames:
    z = np.asarray(encode_texts([t.format(name) for t in templates]), np.float32)
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    m = z.mean(axis=0)
    out.append(m / np.linalg.norm(m))
  return np.stack(out)


def evaluate(encode_images: Callable[[list[Any]], np.ndarray], encode_texts: Callable[[list[str]], np.ndarray],
             data: LabelledImages, templates: Sequence[str], *, batch_size: int = 64,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
  """{"top1", "top5", "mean_per_class_recall" (percent), "per_class": {name: percent}, "per_image": [{"image",
  "label", "pred"}], "confusion": [[...]], "num_images", "num_classes", "num_templates", "notes"} (see report)."""
  weights = class_embeddings(encode_texts, data.classnames, templates)
  n, c = len(data.labels), len(data.classnames)
  logits = np.zeros((n, c), np.float32)
  for start in range(0, n, batch_size):
    idx = list(range(start, min(start + batch_size, n)))
    logits[idx] = 100.0 * np.asarray(encode_images(data.load(idx)), np.float32) @ weights.T
    if progress:
      progress(idx[-1] + 1)
  return report(logits, data.labels, data.classnames, data.ids, len(templates), data.notes)


def report(logits: np.ndarray, labels: np.ndarray, classnames: Sequence[str], ids: Sequence[str],
           num_templates: int, notes: Sequence[str] = ()) -> dict[str, Any]:
  """Percentages: top1, top5 (None with a note when there are <= 5 classes: the label is always among them),
  per_class recall (None for a class no image has) and their mean over the classes with images,
  "mean_per_class_recall" (balanced accuracy, as clip_benchmark and sklearn's balanced_accuracy_score)."""
  pred = logits.argmax(-1)
  c = len(classnames)
  confusion = np.zeros((c, c), np.int64)
  np.add.at(confusion, (labels, pred), 1)
  support = confusion.sum(axis=1)
  recall = 100.0 * np.diag(confusion) / np.maximum(support, 1)
  per_class = {name: float(recall[k]) if support[k] else None for k, name in enumerate(classnames)}
  notes = list(notes)
  top5 = None
  if c > TOP_K:
    top5 = float(100.0 * (np.argsort(-logits, axis=-1)[:, :TOP_K] == labels[:, None]).any(-1).mean())
  else:
    notes.append(f"top5 not reported: with {c} classes the label is always among the top {TOP_K}")
  if (support == 0).any():
    notes.append(f"{int((support == 0).sum())} class(es) without images: per_class null, left out of "
                 "mean_per_class_recall")
  return {"top1": float(100.0 * (pred == labels).mean()),
          "top5": top5,
          "mean_per_class_recall": float(recall[support > 0].mean()),
          "per_class": per_class,
          "per_image": [{"image": i, "label": classnames[int(l)], "pred": classnames[int(p)]}
                        for i, l, p in zip(ids, labels, pred)],
          "confusion": confusion.tolist(), "classes": list(classnames), "num_images": int(len(labels)),
          "num_classes": c, "num_templates": int(num_templates), "notes": notes}


class ZeroShotEvaluator:
  """Zero-shot classification of a labelled image set during or after training (config evals.zero_shot:
  dataset "folder:PATH" or "tfds:NAME", templates, data_dir, split, batch_size, empty_classes). Images are
  resized to the run's largest bucket; the metrics (top1, top5, mean_per_class_recall, per_class) go to
  metrics.json without the per-image list."""

  def __init__(self, pipeline, predictor, *, dataset: str = "", templates: str = "remoteclip", data_dir: str = "",
               split: str = "", batch_size: int = 64, empty_classes: str = "error"):
    if not dataset:
      raise ValueError("Config key evals.zero_shot.dataset is empty (folder:PATH or tfds:NAME)")
    self.pipeline, self.predictor = pipeline, predictor
    self.spec, self.templates = dataset, zero_shot_templates.load(templates)
    self.data_dir, self.split, self.batch_size, self.empty_classes = data_dir, split, batch_size, empty_classes

  def run(self, params) -> dict[str, Any]:
    from rsvlm_jax.data import transforms  # pylint: disable=g-import-not-at-top
    data = dataset(self.spec, self.data_dir, self.split, empty_classes=self.empty_classes)
    res = self.pipeline.buckets.resolutions[-1]
    cfg = self.pipeline.cfg

    local = lambda x: x[_process_rows(len(x))]  # Each process feeds its rows; the predictor gathers all.

    def encode_images(items):
      images = [transforms.resize(image_io.read_image(x) if isinstance(x, str) else image_io.to_rgb(np.asarray(x)), res)
                for x in items]
      batch = np.zeros((self.batch_size, res, res, 3), np.uint8)
      batch[:len(images)] = np.stack(images)
      return self.predictor.encode_images(params, {"image": local(batch)})[:len(images)]

    def encode_texts(texts):
      out = []
      for i in range(0, len(texts), self.batch_size):
        tokens = np.zeros((self.batch_size, cfg.text_len), np.int32)
        chunk = self.pipeline.tokenizer.encode_batch(texts[i:i + self.batch_size], cfg.text_len)
        tokens[:len(chunk)] = chunk
        out.append(self.predictor.encode_texts(params, local(tokens))[:len(chunk)])
      return np.concatenate(out)

    result = evaluate(encode_images, encode_texts, data, self.templates, batch_size=self.batch_size)
    keys = ("top1", "top5", "mean_per_class_recall", "per_class", "num_images", "num_classes", "num_templates", "notes")
    return {k: result[k] for k in keys}


def _process_rows(n: int) -> slice:
  import jax  # pylint: disable=g-import-not-at-top
  per = n // jax.process_count()
  return slice(jax.process_index() * per, (jax.process_index() + 1) * per)
