"""Zero-shot scene classification: class embeddings from prompt ensembles, top-1/top-5, per-class accuracy.

A class's embedding is the mean of its L2-normalised template embeddings, normalised again (the CLIP / open_clip
protocol RemoteCLIP and GeoRSCLIP report with); logits = 100 * image @ classes. Labelled image sets:
`folder:PATH` (one subfolder per class, the layout of AID, WHU-RS19, RSSCN7, PatternNet; a folder name such as
"BaseballField" or "dense_residential" becomes "baseball field" / "dense residential") or `tfds:NAME`
(uc_merced, eurosat/rgb, resisc45 or any TFDS set with "image" and a ClassLabel "label").
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Sequence

import numpy as np

from rsvlm_jax.data import image_io
from rsvlm_jax.evaluate import evaluators
from rsvlm_jax.evaluate import zero_shot_templates


def class_name(folder: str) -> str:
  """'BaseballField' / 'dense_residential' / 'storage-tanks' -> 'baseball field' / ... (lowercase, spaced)."""
  name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", folder)
  return " ".join(re.sub(r"[_\-]+", " ", name).lower().split())


@dataclasses.dataclass
class LabelledImages:
  """Names of the classes, a label and an identifier per image, and a loader of image batches."""
  classnames: list[str]
  labels: np.ndarray
  ids: list[str]
  load: Callable[[Sequence[int]], list[Any]]  # indices -> images (paths are read by the caller's model).


def folder_dataset(root: str) -> LabelledImages:
  if not os.path.isdir(root):
    raise FileNotFoundError(f"folder:{root} is not a directory")
  classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
  files, labels = [], []
  for k, d in enumerate(classes):
    found = sorted(os.path.join(dirpath, f) for dirpath, _, fs in os.walk(os.path.join(root, d)) for f in fs
                   if f.lower().endswith(image_io.IMAGE_EXTENSIONS))
    files += found
    labels += [k] * len(found)
  if not files:
    raise FileNotFoundError(f"folder:{root} has no class subfolders with images (expected ROOT/CLASS/*.jpg)")
  return LabelledImages([class_name(c) for c in classes], np.asarray(labels, np.int64), files,
                        lambda idx: [files[i] for i in idx])


def tfds_dataset(name: str, data_dir: str = "", split: str = "", label_key: str = "label") -> LabelledImages:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(name, data_dir=data_dir or None)
  if label_key not in builder.info.features or not hasattr(builder.info.features[label_key], "names"):
    raise ValueError(f"tfds:{name} has no ClassLabel feature {label_key!r} (features: "
                     f"{sorted(builder.info.features)}); pass --label_key")
  splits = list(builder.info.splits)
  split = split or ("test" if "test" in splits else splits[0] if splits else "train")
  source = tfds.data_source(name, split=split, data_dir=data_dir or None)
  feature = builder.info.features[label_key]
  labels = np.asarray([int(source[i][label_key]) for i in range(len(source))], np.int64)
  ids = [f"{name}/{split}/{i}" for i in range(len(source))]
  return LabelledImages([class_name(n) for n in feature.names], labels, ids,
                        lambda idx: [np.asarray(source[int(i)]["image"]) for i in idx])


def dataset(spec: str, data_dir: str = "", split: str = "", label_key: str = "label") -> LabelledImages:
  """`folder:PATH` or `tfds:NAME`; errors name the spec."""
  kind, _, rest = spec.partition(":")
  if kind == "folder" and rest:
    return folder_dataset(rest)
  if kind == "tfds" and rest:
    return tfds_dataset(rest, data_dir, split, label_key)
  raise ValueError(f"--dataset {spec!r}: expected folder:PATH or tfds:NAME (e.g. tfds:uc_merced, tfds:eurosat/rgb)")


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
  """{"top1", "top5" (percent), "per_class": {name: percent}, "per_image": [{"image", "label", "pred"}],
  "confusion": [[...]], "num_images", "num_templates"} of zero-shot classification."""
  weights = class_embeddings(encode_texts, data.classnames, templates)
  n, c = len(data.labels), len(data.classnames)
  logits = np.zeros((n, c), np.float32)
  for start in range(0, n, batch_size):
    idx = list(range(start, min(start + batch_size, n)))
    logits[idx] = 100.0 * np.asarray(encode_images(data.load(idx)), np.float32) @ weights.T
    if progress:
      progress(idx[-1] + 1)
  return report(logits, data.labels, data.classnames, data.ids, len(templates))


def report(logits: np.ndarray, labels: np.ndarray, classnames: Sequence[str], ids: Sequence[str],
           num_templates: int) -> dict[str, Any]:
  pred = logits.argmax(-1)
  top5 = np.argsort(-logits, axis=-1)[:, :5]
  c = len(classnames)
  confusion = np.zeros((c, c), np.int64)
  np.add.at(confusion, (labels, pred), 1)
  per_class = {name: float(100.0 * confusion[k, k] / max(confusion[k].sum(), 1)) for k, name in enumerate(classnames)}
  return {"top1": float(100.0 * (pred == labels).mean()),
          "top5": float(100.0 * (top5 == labels[:, None]).any(-1).mean()),
          "per_class": per_class,
          "per_image": [{"image": i, "label": classnames[int(l)], "pred": classnames[int(p)]}
                        for i, l, p in zip(ids, labels, pred)],
          "confusion": confusion.tolist(), "classes": list(classnames), "num_images": int(len(labels)),
          "num_templates": int(num_templates)}


@evaluators.register("zero_shot")
class ZeroShotEvaluator:
  """Zero-shot classification of a labelled image set during or after training (config evals.zero_shot:
  dataset "folder:PATH" or "tfds:NAME", templates, data_dir, split, batch_size). Images are resized to the
  run's largest bucket; the metrics (top1, top5, per_class) go to metrics.json without the per-image list."""

  def __init__(self, pipeline, predictor, *, dataset: str = "", templates: str = "remoteclip", data_dir: str = "",
               split: str = "", batch_size: int = 64):
    if not dataset:
      raise ValueError("Config key evals.zero_shot.dataset is empty (folder:PATH or tfds:NAME)")
    self.pipeline, self.predictor = pipeline, predictor
    self.spec, self.templates = dataset, zero_shot_templates.load(templates)
    self.data_dir, self.split, self.batch_size = data_dir, split, batch_size

  def run(self, params) -> dict[str, Any]:
    from rsvlm_jax.data import transforms  # pylint: disable=g-import-not-at-top
    data = dataset(self.spec, self.data_dir, self.split)
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
    return {k: result[k] for k in ("top1", "top5", "per_class", "num_images", "num_templates")}


def _process_rows(n: int) -> slice:
  import jax  # pylint: disable=g-import-not-at-top
  per = n // jax.process_count()
  return slice(jax.process_index() * per, (jax.process_index() + 1) * per)
