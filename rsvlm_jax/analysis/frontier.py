"""The DRIS accuracy/compute frontier of one trained model: every bucket allocation, without retraining.

Every image of a split is encoded, captioned and scored (per-image loss: caption NLL + image-to-text
contrastive loss over all its captions, as resolution_gain.make_loss_fn computes it) at EVERY bucket. An
image's outputs do not depend on the other images of its batch, so any assignment of images to buckets is
then evaluated exactly from these tables (AllocationEvaluator). Policies map an image to a score; at each
budget their buckets follow calibrate_thresholds on the split's own scores, so every policy spends the same
tokens:

  run           the pipeline's own buckets (the run's calibrated thresholds and scorer): its metrics.json;
  complexity    the content-complexity score;
  learned       a learned scorer (dris/learned.py), when one is given;
  random        a fixed random score (the floor a scorer must beat);
  oracle        the model's own loss gain from the smallest to the largest bucket, measured WITH the split's
                captions: not deployable, the ceiling of any score-based allocation for this model;
  coarse_probe  a ridge probe on the embedding at the smallest bucket, fitted to the oracle on the other
                folds (cross-fitted): whether the model's own cheap first pass predicts where tokens help;
  bucket_K      every image at bucket K (the model at a fixed resolution).

Inputs are a model, its params, an input pipeline and a predictor (as `rsvlm_jax.load(...)` and its
`input_pipeline()` / `predictor()` give them); nothing here trains or writes into a run.
"""
from __future__ import annotations

import json

import jax
import numpy as np
from absl import logging

from rsvlm_jax.analysis import resolution_gain
from rsvlm_jax.dris import buckets as buckets_lib
from rsvlm_jax.dris import calibration
from rsvlm_jax.dris import complexity
from rsvlm_jax.dris import learned as dris_learned
from rsvlm_jax.evaluate import caption_metrics
from rsvlm_jax.evaluate import evaluators
from rsvlm_jax.evaluate import retrieval
from rsvlm_jax.runtime import progress as progress_lib

DEFAULT_BUDGETS = (0.3, 0.4, 0.5, 0.6, 0.75)


def bucket_tables(model, params, pipe, pred, split: str, batch: int) -> dict[str, list[np.ndarray]]:
  """Per bucket: image embeddings [N,D], greedy caption strings [N] and per-image losses [N]."""
  n = len(pipe.source(split))
  loss_fn = resolution_gain.make_loss_fn(model)
  chunks = resolution_gain.padded_chunks(n, batch)
  texts = [resolution_gain.caption_tokens(pipe, split, idx_p, pipe.cfg.text_len) for _, idx_p in chunks]
  progress = progress_lib.ItemProgress(n * pipe.buckets.num_buckets, f"DRIS frontier ({split}, images x buckets)")
  out = {"embedding": [], "caption": [], "loss": []}
  for b in range(pipe.buckets.num_buckets):
    emb, capt, loss = [], [], []
    for (idx, idx_p), text in zip(chunks, texts):
      m = len(idx)  # Rows that are not padding.
      ex = pipe.load_examples(split, idx_p, b, seed=(0,), train=False)
      emb.append(pred.encode_images(params, ex)[:m])
      capt += [pipe.tokenizer.decode(row) for row in pred.caption(params, ex)[:m]]
      nll, i2t = jax.device_get(loss_fn(params, ex["image"], text))
      loss.append((np.asarray(nll) + np.asarray(i2t))[:m])
      progress.update(b * n + int(idx[-1]) + 1)
    out["embedding"].append(np.concatenate(emb))
    out["caption"].append(np.array(capt, dtype=object))
    out["loss"].append(np.concatenate(loss))
  return out


def coarse_probe(features: np.ndarray, target: np.ndarray, *, seed: int = 0, folds: int = 2) -> np.ndarray:
  """Cross-fitted ridge probe: each fold's score comes from a ridge regression (standardised features,
  alpha = rows) fitted on the other folds; scores are ranks within a fold, in (0, 1).

  With `features` the image embeddings at the smallest bucket and `target` the loss oracle, this asks
  whether the model's own cheap first pass predicts where tokens help, without scoring any image with a fit
  that saw it (a two-stage DRIS: encode small, re-encode large where the probe says so).
  """
  n = len(target)
  fold = np.random.default_rng([seed, 7]).permutation(n) % folds
  out = np.zeros(n, np.float64)
  for k in range(folds):
    fit, held = fold != k, fold == k
    mu, sd = features[fit].mean(0), features[fit].std(0) + 1e-6
    x = (features[fit] - mu) / sd
    y = target[fit] - target[fit].mean()
    w = np.linalg.solve(x.T @ x + fit.sum() * np.eye(x.shape[1]), x.T @ y)
    pred = ((features[held] - mu) / sd) @ w
    rank = np.argsort(np.argsort(pred, kind="stable"), kind="stable")
    out[held] = (rank + (k + 1) / (folds + 1)) / held.sum()  # Folds interleave: no ties between them.
  return out


class AllocationEvaluator:
  """Metrics of any assignment of images to buckets, read from the per-bucket tables."""

  def __init__(self, tables, refs, ztxt, owner):
    self.embedding, self.loss = np.stack(tables["embedding"]), np.stack(tables["loss"])  # [K,N,...]
    self.caption, self.refs, self.ztxt, self.owner = tables["caption"], refs, ztxt, owner

  def __call__(self, bucket_ids: np.ndarray) -> dict[str, float]:
    rows = np.arange(len(bucket_ids))
    i2t, t2i = retrieval.ranks(self.embedding[bucket_ids, rows] @ self.ztxt.T, self.owner)
    rec = retrieval.recalls(i2t, t2i)
    preds = {self.refs[i][0]: self.caption[b][i] for i, b in enumerate(bucket_ids)}
    caps = caption_metrics.caption_metrics({r[0]: r[1] for r in self.refs}, preds)
    loss = float(self.loss[bucket_ids, rows].mean())
    return {"t2i_R@10": rec["t2i_R@10"], "t2i_R@1": rec["t2i_R@1"], "i2t_R@10": rec["i2t_R@10"], "mR": rec["mR"],
            "CIDEr-D": caps["CIDEr-D"], "BLEU-4": caps["BLEU-4"], "loss": loss}


def frontier(model, params, pipe, pred, *, split: str = "test", budgets=DEFAULT_BUDGETS, scorer_path: str = "",
             batch: int = 50, seed: int = 0, tables_path: str = "") -> dict:
  """Tables at every bucket of `pipe`, then every (policy, budget) point (see the module docstring).

  Returns {"split", "num_images", "buckets": {"resolutions", "tokens", "encoder_gflops"}, "spearman":
  {"<policy>_vs_oracle"}, "points": [{"policy", "budget", "tokens_per_image", "encoder_gflops_per_image",
  "bucket_histogram", "t2i_R@10", "t2i_R@1", "i2t_R@10", "mR", "CIDEr-D", "BLEU-4", "loss"}, ...]}.
  `tables_path` also saves the per-bucket tables and every policy's scores (.npz).
  """
  config, buckets = pipe.config, pipe.buckets
  if model.decoder is None:
    raise ValueError("The DRIS frontier needs a model with a caption decoder (config key model.decoder)")
  tables = bucket_tables(model, params, pipe, pred, split, batch)
  refs = pipe.references(split)
  ztxt, owner = evaluators.encode_references(pipe, pred, params, split, batch)
  evaluate = AllocationEvaluator(tables, refs, ztxt, owner)
  gflops = evaluators.encoder_gflops_per_bucket(pipe, pred, params, split, batch)

  def point(policy, budget, ids):
    hist = buckets_lib.bucket_histogram(ids, buckets.num_buckets)
    p = {"policy": policy, "budget": budget, "bucket_histogram": hist,
         "tokens_per_image": buckets_lib.mean_tokens(ids, buckets),
         "encoder_gflops_per_image": float(np.dot(hist, gflops) / len(ids)), **evaluate(ids)}
    if policy == "coarse_probe":  # Two stages: every image first pays the smallest bucket's encoding.
      p["coarse_pass_gflops_per_image"] = float(gflops[0] * (ids > 0).mean())
    logging.info("DRIS frontier: %s", json.dumps(p))
    return p

  images = [pipe.record(split, i)["image"] for i in range(len(refs))]
  score_size = int(config.dris.score_size)
  policies = {
      "complexity": np.array([complexity.image_score(im, score_size) for im in images]),
      "random": np.random.default_rng(seed).random(len(images)),
      "oracle": tables["loss"][0] - tables["loss"][-1],
  }
  if scorer_path:
    learned = dris_learned.load(scorer_path)
    policies["learned"] = np.array([learned(im) for im in images])
  policies["coarse_probe"] = coarse_probe(tables["embedding"][0], policies["oracle"], seed=seed)
  if tables_path:
    np.savez(tables_path, embedding=np.stack(tables["embedding"]), loss=np.stack(tables["loss"]),
             caption=np.stack(tables["caption"]).astype(str), **{f"score_{k}": v for k, v in policies.items()})
  points = [point(f"bucket_{b}", None, np.full(len(images), b)) for b in range(buckets.num_buckets)]
  if buckets.num_buckets > 1:
    points.append(point("run", config.dris.budget, pipe.bucket_ids(split).astype(np.int64)))
    for budget in budgets:
      for name, score in policies.items():
        ids = buckets_lib.choose_bucket(score, calibration.calibrate_thresholds(score, buckets, float(budget)))
        points.append(point(name, float(budget), ids.astype(np.int64)))
  return {"split": split, "num_images": len(images),
          "buckets": {"resolutions": list(buckets.resolutions), "tokens": list(buckets.tokens),
                      "encoder_gflops": gflops},
          "spearman": {f"{a}_vs_oracle": dris_learned.spearman(policies[a], policies["oracle"])
                       for a in policies if a != "oracle"},
          "points": points}
