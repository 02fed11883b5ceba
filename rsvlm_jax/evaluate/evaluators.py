"""Evaluator registry: `get(name)(pipeline, predictor, **cfg).run(params) -> metrics dict`, from EVALUATORS
(an explicit dict of the built-in evaluators, at the end of this file); `run_evals` runs every evaluator a
config names.

Every evaluator walks the split through `pipeline.eval_batches`, which pads the last batch of each
bucket with a mask, so all processes run the same number of steps.
"""
from __future__ import annotations

import time
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np
from absl import logging

from rsvlm_jax.data.transforms import IMAGE_KEYS
from rsvlm_jax.dris import complexity
from rsvlm_jax.evaluate import caption_metrics
from rsvlm_jax.evaluate import retrieval
from rsvlm_jax.evaluate import zero_shot


def get(name: str):
  if name not in EVALUATORS:
    raise KeyError(f"Unknown evaluator {name!r} (config key evals.{name}); registered: {sorted(EVALUATORS)}")
  return EVALUATORS[name]


def run_evals(evals, pipeline, predictor, params) -> dict[str, dict[str, Any]]:
  """{name: metrics} of every evaluator in `evals` (config.evals: {name: its keyword arguments}), in order."""
  results = {}
  for name, ecfg in evals.items():
    t0 = time.time()
    results[name] = get(name)(pipeline, predictor, **dict(ecfg)).run(params)
    logging.info("Eval %s took %.1fs", name, time.time() - t0)
  return results


def _groups(pipeline, split: str, num_groups: int):
  """(group id per image, names) by DRIS complexity score of the split's images, or None when off."""
  if not num_groups:
    return None
  return complexity.complexity_groups(pipeline.scores(split), num_groups)


def _image_shapes(batch) -> tuple:
  return tuple((k, tuple(batch[k].shape)) for k in IMAGE_KEYS if k in batch)


class RetrievalEvaluator:
  """R@1/5/10 image->text and text->image (all captions of each image) and mR, in percent.

  With complexity_groups=N the result also holds "by_complexity": {group: recalls} for the queries of
  each group of images (equal-count groups by DRIS complexity score; the gallery is always the whole split).
  """

  def __init__(self, pipeline, predictor, *, split: str = "test", batch_size: int = 64, ties: str = "pessimistic",
               complexity_groups: int = 0):
    self.pipeline, self.predictor = pipeline, predictor
    self.split, self.batch_size, self.ties = split, batch_size, ties
    self.complexity_groups = complexity_groups

  def run(self, params) -> dict[str, Any]:
    t0 = time.time()
    n = len(self.pipeline.source(self.split))
    zimg = np.zeros((n, 0), np.float32)
    for batch in self.pipeline.eval_batches(self.split, self.batch_size, "Retrieval: encoding"):
      z = self.predictor.encode_images(params, batch)
      idx = _gather_index(batch, self.pipeline)
      if zimg.shape[1] == 0:
        zimg = np.zeros((n, z.shape[1]), np.float32)
      zimg[idx[idx >= 0]] = z[idx >= 0]
    enc_s = time.time() - t0
    ztxt, owner = encode_references(self.pipeline, self.predictor, params, self.split, self.batch_size)
    i2t, t2i = retrieval.ranks(zimg @ ztxt.T, owner, ties=self.ties)
    out = retrieval.recalls(i2t, t2i)
    out["eval_images_per_s"] = n / max(enc_s, 1e-9)
    groups = _groups(self.pipeline, self.split, self.complexity_groups)
    if groups is not None:
      ids, names = groups
      out["by_complexity"] = {name: dict(retrieval.recalls(i2t[ids == g], t2i[ids[owner] == g]),
                                         num_images=int((ids == g).sum())) for g, name in enumerate(names)}
    return out


def encode_references(pipeline, predictor, params, split: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Embeddings [T,D] of every reference caption of `split` and the index of the image each describes [T]."""
  refs = pipeline.references(split)
  owner = np.array([i for i, (_, caps) in enumerate(refs) for _ in caps])
  tokens = pipeline.tokenizer.encode_batch([c for _, caps in refs for c in caps], pipeline.cfg.text_len)
  ztxt = []
  for start in range(0, len(tokens), batch_size):
    chunk = tokens[start:start + batch_size]
    pad = batch_size - len(chunk)
    chunk = np.concatenate([chunk, np.zeros((pad, chunk.shape[1]), chunk.dtype)])
    ztxt.append(predictor.encode_texts(params, _local_rows(chunk))[:batch_size - pad])
  return np.concatenate(ztxt), owner


def encoder_gflops_per_bucket(pipeline, predictor, params, split: str, batch_size: int) -> list[float]:
  """Image-encoder GFLOPs per image at each bucket, from XLA's cost analysis of the compiled encoder."""
  predictor.set_abstract_params(params)
  gflops = []
  for b in range(pipeline.buckets.num_buckets):
    ex = pipeline.load_examples(split, [0], b, seed=(0,), train=False)
    gflops.append(predictor.encoder_gflops(tuple((k, (batch_size,) + v.shape[1:]) for k, v in ex.items()
                                                 if k in IMAGE_KEYS)))
  return gflops


class CaptioningEvaluator:
  """Decodes a caption per image (greedy or beam) and scores BLEU/ROUGE-L/CIDEr-D vs all references.

  With complexity_groups=N the result also holds "by_complexity": {group: scores} over the images of each
  group (equal-count groups by DRIS complexity score; CIDEr-D's document frequencies are the group's own).
  """

  def __init__(self, pipeline, predictor, *, split: str = "test", batch_size: int = 64, num_examples: int = 5,
               max_images: int | None = None, complexity_groups: int = 0):
    self.pipeline, self.predictor = pipeline, predictor
    self.split, self.batch_size, self.num_examples, self.max_images = split, batch_size, num_examples, max_images
    self.complexity_groups = complexity_groups

  def run(self, params) -> dict[str, Any]:
    refs = self.pipeline.references(self.split)
    preds: dict[int, str] = {}
    for batch in self.pipeline.eval_batches(self.split, self.batch_size, "Captioning"):
      tokens = self.predictor.caption(params, batch)
      idx = _gather_index(batch, self.pipeline)
      for i, row in zip(idx, tokens):
        if i >= 0:
          preds[int(i)] = self.pipeline.tokenizer.decode(row)
    ids = sorted(preds)
    if self.max_images:
      ids = ids[:self.max_images]
    ref_map = {refs[i][0]: refs[i][1] for i in ids}
    pred_map = {refs[i][0]: preds[i] for i in ids}
    scores = caption_metrics.caption_metrics(ref_map, pred_map)
    scores["examples"] = [{"image_id": refs[i][0], "prediction": preds[i], "references": refs[i][1]}
                          for i in ids[:self.num_examples]]
    groups = _groups(self.pipeline, self.split, self.complexity_groups)
    if groups is not None:
      group_of, names = groups
      scores["by_complexity"] = {}
      for g, name in enumerate(names):
        members = [i for i in ids if group_of[i] == g]
        if members:
          sub = caption_metrics.caption_metrics({refs[i][0]: refs[i][1] for i in members},
                                                {refs[i][0]: preds[i] for i in members})
          scores["by_complexity"][name] = dict(sub, num_images=len(members))
    return scores


class EfficiencyEvaluator:
  """Tokens per image, image-encoder GFLOPs per image (XLA cost analysis) and the DRIS bucket histogram."""

  def __init__(self, pipeline, predictor, *, split: str = "test", batch_size: int = 64):
    self.pipeline, self.predictor, self.split, self.batch_size = pipeline, predictor, split, batch_size

  def run(self, params) -> dict[str, Any]:
    report = self.pipeline.bucket_report(self.split)
    gflops = encoder_gflops_per_bucket(self.pipeline, self.predictor, params, self.split, self.batch_size)
    hist = np.asarray(report["histogram"], np.float64)
    report["encoder_gflops_per_bucket"] = gflops
    report["encoder_gflops_per_image"] = float((hist * np.asarray(gflops)).sum() / max(hist.sum(), 1))
    return report


def _gather_index(batch, pipeline) -> np.ndarray:
  """Global example indices of a (process-local) eval batch, in the order of the gathered outputs."""
  del pipeline
  if jax.process_count() == 1:
    return batch["_index"]
  return np.asarray(multihost_utils.process_allgather(batch["_index"], tiled=True))


def _local_rows(rows: np.ndarray) -> np.ndarray:
  """This process's contiguous share of a global array of rows (texts are split like images)."""
  n = len(rows) // jax.process_count()
  return rows[jax.process_index() * n:(jax.process_index() + 1) * n]


EVALUATORS: dict[str, type] = {
    "retrieval": RetrievalEvaluator,
    "captioning": CaptioningEvaluator,
    "efficiency": EfficiencyEvaluator,
    "zero_shot": zero_shot.ZeroShotEvaluator,
}
