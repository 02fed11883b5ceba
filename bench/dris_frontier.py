r"""DRIS accuracy/compute frontier of ONE trained run: every bucket allocation, no retraining.

  python -m bench.dris_frontier --workdir=RUN --out=FILE [--config=configs/demo.py:...]
                                [--budgets=0.3,0.4,0.5,0.6,0.75] [--scorer=scorer.npz] [--split=test]

The run's newest checkpoint is restored read-only (--config defaults to the run's own config.json). Every
image of the split is encoded, captioned and scored (per-image loss: caption NLL + image-to-text
contrastive loss over all its captions, as evaluate/resolution_gain.py computes it) at EVERY bucket of the
run. An image's outputs do not depend on the other images in its batch, so any assignment of images to
buckets can then be evaluated exactly from these tables. Policies (each maps an image to a score; buckets
follow dris.calibrate_thresholds on the split's own scores at each budget, so every policy spends the
same tokens):

  run         the run's own buckets (train-calibrated thresholds, its scorer): reproduces its metrics.json;
  complexity  the content-complexity score (dris.image_score);
  learned     the learned scorer at --scorer (if given);
  random      a fixed random score (the floor a scorer must beat);
  oracle      the run's own loss gain from the smallest to the largest bucket, measured WITH the split's
              captions: not deployable, the ceiling of any score-based allocation for this model;
  coarse_probe  a ridge probe on the image's embedding at the smallest bucket, fitted to the oracle on the
              other half of the split (cross-fitted, so no image is scored by a fit that saw it): whether the
              model's own cheap first pass predicts where tokens help. Two-stage, so its points also
              report coarse_pass_gflops_per_image (the first pass of the images it re-encodes);
  bucket_K    every image at bucket K (the run's model at fixed resolution).

Writes {"run", "buckets": {"resolutions", "tokens", "encoder_gflops"}, "points": [{"policy", "budget",
"tokens_per_image", "encoder_gflops_per_image", "bucket_histogram", "t2i_R@10", "t2i_R@1", "i2t_R@10",
"CIDEr-D", "BLEU-4", "loss"}, ...]}. Coarse-to-fine runs are not supported (their tiles follow the bucket).
"""
from __future__ import annotations

import json
import os

import numpy as np
from absl import app
from absl import flags
from absl import logging

from bench import common


def _flags():
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  return {
      "workdir": flags.DEFINE_string("workdir", None, "The trained run (read only)."),
      "config": config_flags.DEFINE_config_file("config", None, "The run's config (default: its config.json).",
                                                lock_config=False),
      "out": flags.DEFINE_string("out", "bench_results/dris_frontier.json", "Output JSON."),
      "budgets": flags.DEFINE_list("budgets", ["0.3", "0.4", "0.5", "0.6", "0.75"],
                                   "Token budgets (share of the largest bucket's tokens)."),
      "scorer": flags.DEFINE_string("scorer", "", "A learned scorer .npz to add as policy 'learned'."),
      "split": flags.DEFINE_string("split", "test", "Split to evaluate."),
      "batch": flags.DEFINE_integer("batch", 50, "Images per encode/caption batch."),
      "seed": flags.DEFINE_integer("seed", 0, "Seed of the random policy and the probe's folds."),
      "tables": flags.DEFINE_string("tables", "", "Also save the per-bucket tables (embeddings, captions, "
                                    "losses) and every policy's scores to this .npz, for further analysis."),
  }


def load_run_config(workdir: str):
  """The ConfigDict a run was trained with, from its config.json."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: pass --config, or a --workdir written by rsvlm_jax.main")
  with open(path) as f:
    return ml_collections.ConfigDict(config_schema.upgrade(json.load(f)))


def bucket_tables(trainer, split: str, batch: int) -> dict[str, list[np.ndarray]]:
  """Per bucket: image embeddings [N,D], greedy caption strings [N] and per-image losses [N]."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.dris import resolution_gain  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  pipe, params, pred = trainer.pipe, trainer.state.params, job.predictor(trainer)
  n = len(pipe.source(split))
  loss_fn = resolution_gain.make_loss_fn(trainer.model)
  text_len = trainer.config.input.text_len
  starts = range(0, n, batch)
  padded = [np.concatenate([idx, np.full((batch - len(idx),), idx[0])])  # Static shape: one compilation.
            for idx in (np.arange(s, min(s + batch, n)) for s in starts)]
  texts = [resolution_gain.caption_tokens(pipe, split, idx_p, text_len) for idx_p in padded]  # Same per bucket.
  out = {"embedding": [], "caption": [], "loss": []}
  for b in range(pipe.buckets.num_buckets):
    emb, capt, loss = [], [], []
    for start, idx_p, text in zip(starts, padded, texts):
      m = min(batch, n - start)  # Rows that are not padding.
      ex = pipe.load_examples(split, idx_p, b, seed=(0,), train=False)
      emb.append(pred.encode_images(params, ex)[:m])
      capt += [pipe.tokenizer.decode(row) for row in pred.caption(params, ex)[:m]]
      nll, i2t = jax.device_get(loss_fn(params, ex["image"], text))
      loss.append((np.asarray(nll) + np.asarray(i2t))[:m])
    out["embedding"].append(np.concatenate(emb))
    out["caption"].append(np.array(capt, dtype=object))
    out["loss"].append(np.concatenate(loss))
    logging.info("DRIS frontier: bucket %d (%d px) done", b, pipe.buckets.resolutions[b])
  return out


def coarse_probe(features: np.ndarray, target: np.ndarray, *, seed: int = 0, folds: int = 2) -> np.ndarray:
  """Cross-fitted ridge probe: each fold's score comes from a ridge regression (standardised features,
  alpha = rows) fitted on the other folds; scores are ranks within a fold, in [0, 1].

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
    from rsvlm_jax.evaluate import caption_metrics  # pylint: disable=g-import-not-at-top
    from rsvlm_jax.evaluate import retrieval  # pylint: disable=g-import-not-at-top
    rows = np.arange(len(bucket_ids))
    i2t, t2i = retrieval.ranks(self.embedding[bucket_ids, rows] @ self.ztxt.T, self.owner)
    rec = retrieval.recalls(i2t, t2i)
    preds = {self.refs[i][0]: self.caption[b][i] for i, b in enumerate(bucket_ids)}
    caps = caption_metrics.caption_metrics({r[0]: r[1] for r in self.refs}, preds)
    loss = float(self.loss[bucket_ids, rows].mean())
    return {"t2i_R@10": rec["t2i_R@10"], "t2i_R@1": rec["t2i_R@1"], "i2t_R@10": rec["i2t_R@10"], "mR": rec["mR"],
            "CIDEr-D": caps["CIDEr-D"], "BLEU-4": caps["BLEU-4"], "loss": loss}


def frontier(trainer, *, split: str = "test", budgets=(0.3, 0.4, 0.5, 0.6, 0.75), scorer_path: str = "",
             batch: int = 50, seed: int = 0, tables_path: str = "") -> dict:
  """Tables at every bucket, then every (policy, budget) point; see the module docstring."""
  from rsvlm_jax.dris import buckets as buckets_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.dris import calibration  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.dris import complexity  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.dris import learned as dris_learned  # pylint: disable=g-import-not-at-top
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.evaluate import evaluators  # pylint: disable=g-import-not-at-top
  pipe, params = trainer.pipe, trainer.state.params
  buckets = pipe.buckets
  if trainer.config.dris.coarse_to_fine.num_tiles > 0:
    raise ValueError("bench.dris_frontier does not support coarse-to-fine runs (config key "
                     "dris.coarse_to_fine.num_tiles > 0)")
  tables = bucket_tables(trainer, split, batch)
  refs = pipe.references(split)
  pred = job.predictor(trainer)
  ztxt, owner = evaluators.encode_references(pipe, pred, params, split, batch)
  evaluate = AllocationEvaluator(tables, refs, ztxt, owner)
  gflops = evaluators.encoder_gflops_per_bucket(pipe, pred, params, split, batch)
  tok = np.asarray(buckets.tokens, np.float64)

  def point(policy, budget, ids):
    hist = np.bincount(ids, minlength=buckets.num_buckets)
    p = {"policy": policy, "budget": budget, "bucket_histogram": hist.tolist(),
         "tokens_per_image": float(tok[ids].mean()),
         "encoder_gflops_per_image": float((hist * np.asarray(gflops)).sum() / len(ids)), **evaluate(ids)}
    if policy == "coarse_probe":  # Two stages: every image first pays the smallest bucket's encoding.
      p["coarse_pass_gflops_per_image"] = float(gflops[0] * (ids > 0).mean())
    logging.info("DRIS frontier: %s", json.dumps(p))
    return p

  images = [pipe.record(split, i)["image"] for i in range(len(refs))]
  score_size = int(trainer.config.dris.score_size)
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
    points.append(point("run", trainer.config.dris.budget, pipe.bucket_ids(split).astype(np.int64)))
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


def main(argv, f):
  del argv
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(f["workdir"].value)
  config = f["config"].value or load_run_config(workdir)
  trainer = trainer_lib.Trainer(config, workdir, write_record=False)
  if not trainer.restore_or_init():
    raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, 'checkpoints')} and no config.model_init")
  result = frontier(trainer, split=f["split"].value, budgets=[float(b) for b in f["budgets"].value],
                    scorer_path=f["scorer"].value, batch=f["batch"].value, seed=f["seed"].value,
                    tables_path=f["tables"].value)
  common.write_json(f["out"].value, {"run": workdir, **result})


if __name__ == "__main__":
  _F = _flags()
  flags.mark_flag_as_required("workdir")
  app.run(lambda argv: main(argv, _F))
