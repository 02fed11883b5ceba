"""Analyses of a trained model's DRIS: they take a loaded model, its input pipeline and predictor.

  resolution_gain  how much a trained model loses per image at a lower resolution (the learned scorer's target)
  frontier         every allocation of a split's images to buckets, evaluated exactly from per-bucket tables
  scorer_fit       fits the learned DRIS scorer to a teacher's resolution gains (tools/fit_dris_scorer.py)

They depend on models, data, dris and evaluate, and nothing below imports them (tests/test_layering.py).
"""
