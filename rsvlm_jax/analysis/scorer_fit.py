"""Fits the learned DRIS scorer to a teacher's resolution gains and saves it (tools/fit_dris_scorer.py's work).

For each of the first `max_images` images of a split the teacher's resolution gain is measured
(resolution_gain.py), the scorer is fitted on a (1 - heldout) share and checked on the rest (Spearman rank
correlation, since only the order of scores sets the buckets), then refitted on all of them.
"""
from __future__ import annotations

import json
import os

import numpy as np
from absl import logging

from rsvlm_jax.analysis import resolution_gain
from rsvlm_jax.dris import complexity
from rsvlm_jax.dris import learned as dris_learned


def fit_scorer(model, params, pipe, out: str, *, score_size: int, low_res: int = 0, max_images: int = 0,
               split: str = "train", native: bool = False, heldout: float = 0.2, seed: int = 0, hidden: int = 16,
               fit_steps: int = 300, teacher_workdir: str = "") -> dict:
  """Measures the teacher's (model, params) resolution gains on `pipe`, fits the scorer, saves it to `out`
  (plus OUT's .json report and OUT's _gains.npz); returns the report."""
  high = pipe.buckets.resolutions[-1]
  if not low_res:  # Native gains: the smallest bucket against the largest; else half the largest.
    low_res = pipe.buckets.resolutions[0] if native and pipe.buckets.num_buckets > 1 else high // 2
  gains = resolution_gain.resolution_gains(model, params, pipe, low_res=low_res, split=split,
                                           max_images=max_images, native=native)
  images = [pipe.record(split, i)["image"] for i in gains["index"]]
  feats = np.stack([dris_learned.features(im, score_size) for im in images])
  complexity_scores = np.array([complexity.image_score(im, score_size) for im in images])
  order = np.random.default_rng(seed).permutation(len(images))
  n_fit = max(2, int(round(len(images) * (1.0 - heldout))))
  fit_idx, test_idx = order[:n_fit], order[n_fit:]
  recipe = dict(seed=seed, score_size=score_size, hidden=hidden, steps=fit_steps)
  check = dris_learned.fit(feats[fit_idx], gains["gain"][fit_idx], **recipe)
  heldout_spearman = (dris_learned.spearman(check.predict(feats[test_idx]), gains["gain"][test_idx])
                      if len(test_idx) > 1 else None)
  # The per-image gains are noisy, so the scorer that is saved is refitted on every image once the
  # held-out share has checked the recipe.
  scorer = dris_learned.fit(feats, gains["gain"], **recipe) if len(test_idx) else check
  scorer.save(out)
  np.savez(os.path.splitext(out)[0] + "_gains.npz", features=feats, **gains)
  pred = scorer.predict(feats)
  report = {
      "teacher_workdir": teacher_workdir, "teacher_resolution": high, "low_res": low_res, "native": native,
      "split": split, "hidden": hidden, "fit_steps": fit_steps, "num_images": len(images),
      "num_check_fit": len(fit_idx), "num_heldout": len(test_idx),
      "gain_mean": float(gains["gain"].mean()), "gain_std": float(gains["gain"].std()),
      "nll_gain_mean": float((gains["nll_low"] - gains["nll"]).mean()),
      "i2t_gain_mean": float((gains["i2t_low"] - gains["i2t"]).mean()),
      "spearman_heldout": heldout_spearman,  # The check fit on num_check_fit images, on the rest.
      "spearman_fit": dris_learned.spearman(pred, gains["gain"]),  # The saved scorer, on all its images.
      "spearman_complexity_vs_gain": dris_learned.spearman(complexity_scores, gains["gain"]),
      "spearman_learned_vs_complexity": dris_learned.spearman(pred, complexity_scores),
      "scorer": os.path.abspath(out),
  }
  with open(os.path.splitext(out)[0] + ".json", "w") as f:
    json.dump(report, f, indent=2)
  logging.info("DRIS scorer: %s", json.dumps(report))
  return report
