"""DRIS, the dynamic resolution input strategy: each image is encoded at one of a few static resolutions.

  complexity       the training-free content-complexity score (and complexity groups for per-group metrics)
  learned          the learned scorer: a tiny numpy MLP on coarse features, fitted to a teacher's resolution gain
  scorers          one interface over both (`make_scorer`), with a cache tag per scorer
  buckets          BucketSet (static resolutions at one patch size), bucket statistics
  calibration      score thresholds that meet a token budget; a workdir cache of scores and thresholds
  policy           BucketPolicy: which bucket an image gets in training and at serving
  tiles            coarse-to-fine: the most complex tiles at full resolution
  resolution_gain  how much a trained model loses per image at a lower resolution (the learned scorer's target)
  frontier         every allocation of a split's images to buckets, evaluated exactly from per-bucket tables

The first seven are the data pipeline's part and import no model or evaluator; the two analyses take a loaded
model, pipeline and predictor, never a Trainer (tests/test_layering.py).
"""
