"""grain input pipeline: TFDS records -> per-record transforms -> batches of one DRIS bucket (or mixed).

`InputPipeline(config, workdir)` opens the sources, the run's tokenizer (data/run_files.py) and its DRIS
state (dris/: scorer, calibration, policy), then serves `train_dataset(num_steps)` (a grain dataset whose
iterator state is checkpointed with the model; each element a process-local batch plus "_bucket" and
"_step") and `eval_batches(split, global_batch)` (every example exactly once, padded with "_mask", the
same number of batches on every process).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Iterator

import grain
import jax
import ml_collections
import numpy as np
from absl import logging

from rsvlm_jax.data import batch_plan
from rsvlm_jax.runtime import mixed_batch
from rsvlm_jax.data import run_files
from rsvlm_jax.data import sources
from rsvlm_jax.data import transforms as T
from rsvlm_jax.dris import buckets as buckets_lib
from rsvlm_jax.dris import calibration
from rsvlm_jax.dris import policy as policy_lib
from rsvlm_jax.dris import scorers
from rsvlm_jax.runtime import progress as progress_lib

DATASET_FILE = run_files.DATASET_FILE


class _LoadBatch(grain.transforms.Map):
  """step -> process-local batch: the plan's bucket(s) for that step, loaded and (mixed) combined."""

  def __init__(self, pipeline: "InputPipeline", plan):
    self._pipeline, self._plan = pipeline, plan

  def map(self, step):
    planned = self._plan(step)
    mixed = isinstance(planned, list)
    subs = []
    for bucket, indices in (planned if mixed else [planned]):
      local = batch_plan.process_slice(indices, jax.process_index(), jax.process_count())
      subs.append(self._pipeline.load_examples("train", local, bucket, seed=(self._plan.seed, int(step)),
                                               train=True))
    batch = mixed_batch.combine(subs) if mixed else subs[0]
    batch["_bucket"] = np.int32(-1 if mixed else subs[0]["_bucket"])
    batch["_step"] = np.int64(step)
    return batch


def _weighted(config: ml_collections.ConfigDict, loss: str) -> bool:
  """Whether config.losses weighs `loss` (a non-zero weight; the weight defaults to 1)."""
  return loss in config.losses and float(config.losses[loss].get("weight", 1.0)) != 0.0


class InputPipeline:
  """Data for one run: sources, tokenizer, DRIS buckets, and train/eval iterators."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, *, need_phrases: bool | None = None,
               need_objects: bool | None = None, policy: policy_lib.BucketPolicy | None = None):
    """`config` has passed the config gate (rsvlm_jax.config_schema.gate). `need_phrases` / `need_objects`
    (the trainer passes them; default: whether config.losses weighs the local / object alignment level) add
    phrase and object targets; `policy` overrides config.dris.train/serve (e.g. serving at the largest)."""
    self.config, self.cfg, self.workdir = config, config.input, workdir
    self.seed = int(config.seed)
    self._sources: dict[str, Any] = {}
    self._source_info = None
    self._split_sizes_checked()
    self.tokenizer = run_files.run_tokenizer(workdir, self.cfg.tokenizer_path, self.cfg.vocab_size,
                                             self._train_captions)
    self.buckets = buckets_lib.from_config(config)
    self.policy = policy or policy_lib.BucketPolicy(self.buckets, config.dris.train, config.dris.serve)
    self.calibration = calibration.Calibration.from_config(workdir, config, self.buckets,
                                                           recalibrate_ok=not self.policy.uses_buckets("train"))
    if self.policy.uses_buckets("train"):
      self.thresholds  # pylint: disable=pointless-statement  # A workdir calibrated differently fails now.
    self._bucket_ids: dict[tuple[str, str], np.ndarray] = {}
    self.need_phrases = _weighted(config, "local_alignment") if need_phrases is None else need_phrases
    want_objects = _weighted(config, "object_alignment") if need_objects is None else need_objects
    self.need_objects = want_objects and self.class_names is not None
    if want_objects and not self.need_objects:
      logging.warning("Object-level targets requested but %s has no 'objects' feature; the object loss "
                      "sees no objects (see losses/alignment.py for the no-box fallback)", self.cfg.dataset)

  # -- sources ---------------------------------------------------------------------------------
  def source(self, split: str):
    if split not in self._sources:
      name = dict(self.cfg.splits).get(split, split)
      self._sources[split], self._source_info = sources.open_source(self.cfg.dataset, name, self.cfg.data_dir)
    return self._sources[split]

  def _split_sizes_checked(self) -> None:
    self.source("train")
    sizes = {k: int(v.num_examples) for k, v in self._source_info.splits.items()}
    run_files.check_dataset(self.workdir, self.cfg.dataset, self.cfg.data_dir, sizes)

  def _train_captions(self):
    for i in range(min(len(self.source("train")), int(self.cfg.tokenizer_examples))):
      yield from sources.as_text_list(self.record("train", i)["captions"])

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

  # -- DRIS ---------------------------------------------------------------------------------------
  def image_scorer(self) -> scorers.Scorer:
    """The run's DRIS scorer (config key dris.scorer; the content-complexity score when empty)."""
    return self.calibration.scorer

  def scores(self, split: str) -> np.ndarray:
    """DRIS score of every record of `split` (cached in WORKDIR/dris/, per scorer)."""
    return self.calibration.scores(split, len(self.source(split)), lambda i: self.record(split, i)["image"])

  @property
  def thresholds(self) -> np.ndarray:
    """The K-1 score thresholds (fixed, cached in the workdir, or calibrated on the training scores)."""
    return self.calibration.thresholds(lambda: self.scores("train"))

  def bucket_ids(self, split: str, phase: str = "serve") -> np.ndarray:
    """The bucket of every record of `split` under the policy's `phase` ("train" or "serve")."""
    key = (split, phase)
    if key not in self._bucket_ids:
      self._bucket_ids[key] = self.policy.assign(phase, len(self.source(split)), lambda: self.scores(split),
                                                 lambda: self.thresholds)
    return self._bucket_ids[key]

  def serving_at(self, assignment: str) -> "InputPipeline":
    """A view of this pipeline (same sources, tokenizer and calibration) that serves by `assignment`:
    "largest" (every image at the largest bucket) or "buckets"."""
    view = copy.copy(self)
    view.policy = dataclasses.replace(self.policy, serve=assignment)
    view._bucket_ids = {k: v for k, v in self._bucket_ids.items() if k[1] == "train"}  # pylint: disable=protected-access
    return view

  def train_bucket_ids(self) -> np.ndarray:
    return self.bucket_ids("train", "train")

  def bucket_report(self, split: str, *, training: bool = False) -> dict[str, Any]:
    """Resolutions, tokens, histogram and mean tokens per image of `split` (training: as trained)."""
    ids = self.bucket_ids(split, "train" if training else "serve")
    return {"resolutions": list(self.buckets.resolutions),
            "tokens_per_bucket": list(self.buckets.tokens),
            "histogram": buckets_lib.bucket_histogram(ids, self.buckets.num_buckets),
            "tokens_per_image": float(buckets_lib.mean_tokens(ids, self.buckets))}

  # -- examples -----------------------------------------------------------------------------------
  def transforms(self, bucket: int, train: bool):
    ts = [T.ResizeImage(self.buckets.resolutions[bucket], int(self.cfg.detail_res))]
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
    """True when every train batch mixes all buckets (dris.mixed_buckets, and training uses the buckets).

    With dris.train=largest training uses the largest bucket only, through the same plan and batches as a
    fixed run at that resolution, so a fixed run's weights are exactly such a run's.
    """
    return bool(self.config.dris.mixed_buckets) and self.policy.uses_buckets("train")

  def train_plan(self, shards: int = 1) -> batch_plan.TrainPlan | batch_plan.MixedPlan:
    """The step schedule: bucket-homogeneous batches, or (mixed) every bucket in every batch."""
    jitter = float(self.config.dris.bucket_jitter)
    if self.mixed:
      return batch_plan.MixedPlan(self.train_bucket_ids(), self.buckets.num_buckets, self.cfg.batch_size,
                                  self.seed, multiple=shards, jitter=jitter)
    if jitter and self.buckets.num_buckets > 1:
      why = ("every training image is at the largest bucket (dris.train=largest)"
             if not self.policy.uses_buckets("train") else
             "a bucket-homogeneous batch has no other bucket to swap with (set dris.mixed_buckets=True)")
      raise ValueError(f"Config key dris.bucket_jitter has nothing to swap: {why}")
    return batch_plan.TrainPlan(self.train_bucket_ids(), self.buckets.num_buckets, self.cfg.batch_size,
                                self.seed)

  def train_dataset(self, num_steps: int, shards: int = 1) -> grain.IterDataset:
    """grain dataset over steps [0, num_steps); its iterator state is what the checkpoint stores.

    `shards` (the data-parallel size) only matters for mixed batches, whose per-bucket sub-batches must
    each split evenly over the devices.
    """
    ds = grain.MapDataset.range(num_steps).map(_LoadBatch(self, self.train_plan(shards)))
    ids = ds.to_iter_dataset(grain.ReadOptions(num_threads=self.cfg.num_threads,
                                               prefetch_buffer_size=self.cfg.prefetch))
    if self.cfg.workers > 0:
      ids = ids.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.cfg.workers))
    return ids

  def eval_batches(self, split: str, global_batch: int, what: str = "eval") -> Iterator[dict[str, np.ndarray]]:
    """Process-local padded batches covering `split` once; "_index" (-1 = padding) and "_mask". A progress
    line ("`what` (split): done/total images, rate, ETA") is logged as they are consumed."""
    plan = batch_plan.eval_plan(self.bucket_ids(split), self.buckets.num_buckets, global_batch)
    progress = progress_lib.ItemProgress(len(self.source(split)), f"{what} ({split}) images")
    done = 0
    for bucket, indices, mask in plan:
      local = batch_plan.process_slice(indices, jax.process_index(), jax.process_count())
      local_mask = batch_plan.process_slice(mask, jax.process_index(), jax.process_count())
      batch = self.load_examples(split, local, bucket, seed=(0,), train=False)
      batch["_index"] = local.astype(np.int64)
      batch["_mask"] = local_mask
      yield batch
      done += int(mask.sum())
      progress.update(done)

  def references(self, split: str) -> list[tuple[str, list[str]]]:
    """(image_id, captions) of every record of `split`, in index order."""
    out = []
    for i in range(len(self.source(split))):
      rec = self.record(split, i)
      out.append((sources.as_text(rec.get("image_id", str(i))), sources.as_text_list(rec["captions"])))
    return out

