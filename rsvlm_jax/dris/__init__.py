"""DRIS, the dynamic resolution input strategy: each image is encoded at one of a few static resolutions.

  complexity       the training-free content-complexity score (and complexity groups for per-group metrics)
  learned          the learned scorer: a tiny numpy MLP on coarse features, fitted to a teacher's resolution gain
  scorers          one interface over both (`make_scorer`), with a cache tag per scorer
  buckets          BucketSet (static resolutions at one patch size), bucket statistics
  calibration      score thresholds that meet a token budget; a workdir cache of scores and thresholds
  policy           BucketPolicy: which bucket an image gets in training and at serving

All of it is serving-time DRIS, below the data pipeline: it imports no data, model or evaluator module. The
analyses of a trained model (resolution gains, frontier, scorer fitting) live in rsvlm_jax/analysis/
(tests/test_layering.py).
"""
