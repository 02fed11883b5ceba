"""grain input pipeline: TFDS source -> transforms -> DRIS bucket -> batches grouped by bucket.

`InputPipeline(config.input, ...)` owns the data sources, the tokenizer and the DRIS bucketing of a
run. `train_iterator(start_step)` yields process-local batches (a dict of numpy arrays plus
"_bucket"); its grain state is checkpointed with the model. `eval_batches(split)` yields every
example exactly once, padded with a mask, the same number of batches on every process.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any, Iterator

import grain
import jax
import ml_collections
import numpy as np
from absl import logging

from rsvlm_jax import dris
from rsvlm_jax import dris_learned
from rsvlm_jax.data import batch_plan
from rsvlm_jax.data import mixed_batch
from rsvlm_jax.data import sources
from rsvlm_jax.data import tokenizer as tokenizer_lib
from rsvlm_jax.data import transforms as T


def _process_zero_first(make, load, name: str):
  """Process 0 computes and writes a run artefact; the others wait for it and read it."""
  if jax.process_count() == 1:
    return make()
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  value = make() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices(f"rsvlm:{name}")
  return value if value is not None else load()


# input.dris_at: where DRIS buckets apply. "train_and_serve": training and evaluation use the calibrated
# buckets. "serve": every training image is encoded at the largest bucket, and only evaluation/serving
# uses DRIS (a model trained with all its tokens, served with fewer where its scorer says they matter).
DRIS_AT = ("train_and_serve", "serve")
DATASET_FILE = "dataset.json"  # The dataset a workdir's tokenizer and DRIS caches were made from.


def _bucket_set(cfg) -> dris.BucketSet:
  return dris.BucketSet(tuple(int(r) for r in cfg.resolutions), int(cfg.patch_size))


class _LoadBatch(grain.transforms.Map):
  """step -> process-local batch of the bucket the plan assigns to that step."""

  def __init__(self, pipeline: "InputPipeline", plan: batch_plan.TrainPlan):
    self._pipeline = pipeline
    self._plan = plan

  def map(self, step):
    bucket, indices = self._plan(step)
    local = batch_plan.process_slice(indices, jax.process_index(), jax.process_count())
    batch = self._pipeline.load_examples("train", local, bucket, seed=(self._plan.seed, int(step)), train=True)
    batch["_step"] = np.int64(step)
    return batch


class _LoadMixedBatch(grain.transforms.Map):
  """step -> process-local mixed batch: this process's share of every bucket's sub-batch, tagged by bucket."""

  def __init__(self, pipeline: "InputPipeline", plan: batch_plan.MixedPlan):
    self._pipeline = pipeline
    self._plan = plan

  def map(self, step):
    batch = {}
    for bucket, indices in self._plan(step):
      local = batch_plan.process_slice(indices, jax.process_index(), jax.process_count())
      sub = self._pipeline.load_examples("train", local, bucket, seed=(self._plan.seed, int(step)), train=True)
      batch.update(mixed_batch.tag(sub, bucket))
    batch["_bucket"] = np.int32(-1)
    batch["_step"] = np.int64(step)
    return batch


class InputPipeline:
  """Data for one run: sources, tokenizer, DRIS thresholds, and train/eval iterators."""

  def __init__(self, cfg: ml_collections.ConfigDict, workdir: str, *, need_phrases: bool = False,
               need_objects: bool = False, seed: int = 0):
    self.cfg = cfg
    self.workdir = workdir
    self.seed = seed
    self.buckets = _bucket_set(cfg)
    self._scorer = None
    self._sources: dict[str, Any] = {}
    self._source_info = None
    self._check_dataset()
    self.tokenizer = self._tokenizer()
    self._thresholds_value = None
    if self.dris_at not in DRIS_AT:
      raise ValueError(f"Config key input.dris_at must be one of {DRIS_AT}, got {self.dris_at!r}")
    if self.dris_at != "serve":
      self._thresholds_value = self._thresholds()  # At startup: a workdir calibrated differently fails now.
    self._bucket_ids: dict[str, np.ndarray] = {}
    self.need_phrases = need_phrases
    self.need_objects = need_objects and self.class_names is not None
    if need_objects and not self.need_objects:
      logging.warning("Object-level targets requested but %s has no 'objects' feature; the object loss "
                      "sees no objects (see losses/alignment.py for the no-box fallback)", cfg.dataset)

  # -- sources ---------------------------------------------------------------------------------
  def source(self, split: str):
    if split not in self._sources:
      name = self.cfg.get(f"{split}_split", split)
      self._sources[split], self._source_info = sources.open_source(self.cfg.dataset, name, self.cfg.data_dir)
    return self._sources[split]

  @property
  def class_names(self):
    self.source("train")
    feats = self._source_info.features
    if "objects" not in feats:
      return None
    return list(feats["objects"]["label"].names)

  def record(self, split: str, index: int) -> dict[str, Any]:
    try:
      return self.source(split)[int(index)]
    except Exception as e:  # pylint: disable=broad-except
      raise RuntimeError(f"Cannot read record {index} of {self.cfg.dataset} split {split!r} under "
                         f"{self.cfg.data_dir}: {e}") from e

  # -- tokenizer and DRIS state (saved next to the run, reused on restart) ------------------------
  def _check_dataset(self) -> None:
    """Records the dataset (name, split sizes) in WORKDIR/dataset.json; another dataset there fails."""
    self.source("train")
    record = {"dataset": self.cfg.dataset,
              "splits": {k: int(v.num_examples) for k, v in sorted(self._source_info.splits.items())}}
    path = os.path.join(self.workdir, DATASET_FILE)
    if os.path.exists(path):
      with open(path) as f:
        saved = json.load(f)
      if saved != record:
        raise ValueError(f"{path}: this workdir's tokenizer and DRIS caches were made from dataset "
                         f"{saved.get('dataset')!r} (splits {saved.get('splits')}), but config key input.dataset "
                         f"gives {record['dataset']!r} (splits {record['splits']}) under {self.cfg.data_dir}; "
                         "use a new workdir for another dataset")
    elif jax.process_index() == 0:
      os.makedirs(self.workdir, exist_ok=True)
      with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2)
      os.replace(path + ".tmp", path)

  def _tokenizer(self) -> tokenizer_lib.Tokenizer:
    if self.cfg.get("tokenizer_path"):
      return tokenizer_lib.from_file(self.cfg.tokenizer_path)
    clip_bpe = os.path.join(self.workdir, tokenizer_lib.CLIP_BPE_FILE)
    if os.path.isfile(clip_bpe):  # Adopted from converted open_clip weights (config.model_init).
      return tokenizer_lib.from_file(clip_bpe)
    src = self.source("train")
    limit = min(len(src), self.cfg.get("tokenizer_examples", 20000))

    def captions():
      for i in range(limit):
        yield from sources.as_text_list(self.record("train", i)["captions"])

    path = os.path.join(self.workdir, "tokenizer.model")
    return _process_zero_first(lambda: tokenizer_lib.load_or_train(path, captions, self.cfg.vocab_size),
                               lambda: tokenizer_lib.load(path), "tokenizer")

  def image_scorer(self):
    """image -> DRIS score: the learned scorer at config key input.scorer (a .npz from
    tools/fit_dris_scorer), or the content-complexity score when that key is empty."""
    if self._scorer is None:
      path = self.cfg.get("scorer", "")
      if path:
        self._scorer = dris_learned.load(path)
        logging.info("DRIS: learned scorer %s", path)
      else:
        self._scorer = functools.partial(dris.image_score, size=self.cfg.score_size)
    return self._scorer

  def scores(self, split: str) -> np.ndarray:
    """DRIS score (see `image_scorer`) of every record of `split` (cached in the workdir, per scorer)."""
    tag = ""
    if self.cfg.get("scorer", ""):  # A learned scorer's scores are cached under a digest of its file.
      self.image_scorer()  # A missing or stale file fails here, with the config key in the message.
      with open(self.cfg.scorer, "rb") as f:
        tag = "-" + hashlib.sha1(f.read()).hexdigest()[:12]
    path = os.path.join(self.workdir, "dris", f"scores_{split}{tag}.npy")
    if os.path.exists(path):
      return np.load(path)

    def compute():
      src, score = self.source(split), self.image_scorer()
      out = np.array([score(self.record(split, i)["image"]) for i in range(len(src))], np.float32)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      np.save(path + ".tmp.npy", out)
      os.replace(path + ".tmp.npy", path)
      return out

    return _process_zero_first(compute, lambda: np.load(path), f"dris_scores_{split}")

  @property
  def dris_at(self) -> str:
    return self.cfg.get("dris_at", "train_and_serve") or "train_and_serve"

  @property
  def thresholds(self) -> np.ndarray:
    """The K-1 calibrated score thresholds (computed on first use, then kept in the workdir)."""
    if self._thresholds_value is None:
      self._thresholds_value = self._thresholds()
    return self._thresholds_value

  def _thresholds(self) -> np.ndarray:
    if self.buckets.num_buckets == 1:
      return np.zeros((0,), np.float32)
    if self.cfg.get("thresholds"):
      return np.asarray(self.cfg.thresholds, np.float32)
    path = os.path.join(self.workdir, "dris", "thresholds.json")
    record = {"budget": self.cfg.budget, "scorer": self.cfg.get("scorer", "") or "complexity",
              "resolutions": list(self.buckets.resolutions)}
    saved = None
    if os.path.exists(path):
      with open(path) as f:
        saved = json.load(f)
      for key, value in record.items():  # A workdir's buckets never change under a run.
        if saved.get(key, "complexity" if key == "scorer" else None) != value:
          if self.dris_at != "serve":
            raise ValueError(f"{path} was calibrated with {key}={saved.get(key)!r} but the config has "
                             f"{value!r} (config key input.{key}); use a new workdir, or delete "
                             f"{os.path.dirname(path)} to recalibrate")
          # input.dris_at=serve: training never used these buckets, so recalibrating changes no run.
          logging.warning("DRIS (input.dris_at=serve): %s was calibrated with %s=%r; recalibrating for %r",
                          path, key, saved.get(key), value)
          saved = None
          break
    if saved is not None:
      return np.asarray(saved["thresholds"], np.float32)
    scores = self.scores("train")

    def compute():
      th = dris.calibrate_thresholds(scores, self.buckets, self.cfg.budget)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path + ".tmp", "w") as f:
        json.dump({"thresholds": th.tolist(), **record}, f)
      os.replace(path + ".tmp", path)
      return th

    def load():
      with open(path) as f:
        return np.asarray(json.load(f)["thresholds"], np.float32)

    return _process_zero_first(compute, load, "dris_thresholds")

  def bucket_ids(self, split: str) -> np.ndarray:
    if split not in self._bucket_ids:
      if self.buckets.num_buckets == 1:
        self._bucket_ids[split] = np.zeros((len(self.source(split)),), np.int32)
      else:
        self._bucket_ids[split] = dris.choose_bucket(self.scores(split), self.thresholds).astype(np.int32)
    return self._bucket_ids[split]

  def train_bucket_ids(self) -> np.ndarray:
    """The bucket each training example is trained at: its DRIS bucket, or the largest with dris_at=serve."""
    if self.dris_at == "serve":
      return np.full((len(self.source("train")),), self.buckets.num_buckets - 1, np.int32)
    return self.bucket_ids("train")

  def bucket_report(self, split: str, *, training: bool = False) -> dict[str, Any]:
    """Resolutions, tokens, histogram and mean tokens per image of `split` (training: as trained)."""
    ids = self.train_bucket_ids() if training else self.bucket_ids(split)
    return {"resolutions": list(self.buckets.resolutions),
            "tokens_per_bucket": list(self.buckets.tokens),
            "histogram": dris.bucket_histogram(ids, self.buckets.num_buckets),
            "tokens_per_image": float(dris.mean_tokens(ids, self.buckets))}

  # -- examples -----------------------------------------------------------------------------------
  def transforms(self, bucket: int, train: bool):
    res = self.buckets.resolutions[bucket]
    ts = [T.ResizeImage(res, int(self.cfg.get("detail_res", 0) or 0))]
    c2f = self.cfg.get("coarse_to_fine")
    if c2f and c2f.num_tiles > 0:
      ts.append(T.CoarseToFineTiles(c2f.num_tiles, c2f.tile_grid, c2f.tile_size))
    ts.append(T.TokenizeCaption(self.tokenizer, self.cfg.text_len, pick_first=not train))
    if self.need_phrases:
      ts.append(T.PhraseTokens(self.tokenizer, self.cfg.max_phrases, self.cfg.phrase_len))
    if self.need_objects:
      ts.append(T.ObjectTargets(self.tokenizer, self.class_names, self.cfg.max_objects, self.cfg.phrase_len))
    return ts

  def load_examples(self, split: str, indices, bucket: int, *, seed, train: bool) -> dict[str, np.ndarray]:
    ts = self.transforms(bucket, train)
    exs = []
    for i in indices:
      rng = np.random.default_rng([self.seed, *np.atleast_1d(seed).tolist(), max(int(i), 0)])
      try:
        exs.append(T.apply_all(ts, self.record(split, max(int(i), 0)), rng))
      except RuntimeError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        raise RuntimeError(f"Failed to process record {int(i)} of {self.cfg.dataset} split {split!r}: {e}") from e
    batch = {k: np.stack([e[k] for e in exs]) for k in exs[0]}
    batch["_bucket"] = np.int32(bucket)
    return batch

  # -- iterators ----------------------------------------------------------------------------------
  @property
  def mixed(self) -> bool:
    """True when every train batch mixes all buckets (input.mixed_buckets and more than one bucket).

    Never with input.dris_at=serve: training then uses the largest bucket only, through the same plan and
    batches as a fixed run at that resolution, so a fixed run's weights are exactly a dris_at=serve run's.
    """
    return (bool(self.cfg.get("mixed_buckets", False)) and self.buckets.num_buckets > 1
            and self.dris_at != "serve")

  def train_plan(self, shards: int = 1) -> batch_plan.TrainPlan | batch_plan.MixedPlan:
    """The step schedule: bucket-homogeneous batches, or (input.mixed_buckets) every bucket in every batch."""
    if self.mixed:
      return batch_plan.MixedPlan(self.train_bucket_ids(), self.buckets.num_buckets, self.cfg.batch_size,
                                  self.seed, multiple=shards, jitter=float(self.cfg.get("bucket_jitter", 0.0)))
    if self.cfg.get("bucket_jitter", 0.0) and self.dris_at == "serve":
      raise ValueError("input.bucket_jitter has nothing to swap with input.dris_at=serve: every training image "
                       "is at the largest bucket")
    if self.cfg.get("bucket_jitter", 0.0) and self.buckets.num_buckets > 1:
      raise ValueError("input.bucket_jitter needs mixed batches (config key input.mixed_buckets=True): a "
                       "bucket-homogeneous batch has no other bucket to swap with")
    return batch_plan.TrainPlan(self.train_bucket_ids(), self.buckets.num_buckets, self.cfg.batch_size,
                                self.seed)

  def train_dataset(self, num_steps: int, shards: int = 1) -> grain.IterDataset:
    """grain dataset over steps [0, num_steps); its iterator state is what the checkpoint stores.

    `shards` (the data-parallel size) only matters for mixed batches, whose per-bucket sub-batches must
    each split evenly over the devices.
    """
    plan = self.train_plan(shards)
    load = _LoadMixedBatch(self, plan) if self.mixed else _LoadBatch(self, plan)
    ds = grain.MapDataset.range(num_steps).map(load)
    read = grain.ReadOptions(num_threads=self.cfg.get("num_threads", 2),
                             prefetch_buffer_size=self.cfg.get("prefetch", 4))
    ids = ds.to_iter_dataset(read)
    if self.cfg.get("workers", 0) > 0:
      ids = ids.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.cfg.workers))
    return ids

  def eval_batches(self, split: str, global_batch: int) -> Iterator[dict[str, np.ndarray]]:
    """Process-local padded batches covering `split` once; "_index" (-1 = padding) and "_mask"."""
    plan = batch_plan.eval_plan(self.bucket_ids(split), self.buckets.num_buckets, global_batch)
    for bucket, indices, mask in plan:
      local = batch_plan.process_slice(indices, jax.process_index(), jax.process_count())
      local_mask = batch_plan.process_slice(mask, jax.process_index(), jax.process_count())
      batch = self.load_examples(split, local, bucket, seed=(0,), train=False)
      batch["_index"] = local.astype(np.int64)
      batch["_mask"] = local_mask
      yield batch

  def references(self, split: str) -> list[tuple[str, list[str]]]:
    """(image_id, captions) of every record of `split`, in index order."""
    src = self.source(split)
    out = []
    for i in range(len(src)):
      rec = self.record(split, i)
      out.append((sources.as_text(rec.get("image_id", str(i))), sources.as_text_list(rec["captions"])))
    return out
