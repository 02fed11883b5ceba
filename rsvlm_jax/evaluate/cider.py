"""CIDEr-D as computed by pycocoevalcap's `Cider` (the COCO caption evaluation).

Each caption becomes, for n = 1..4, a TF-IDF vector of its n-grams: weight = count * (log N - log df),
where N is the number of evaluated images and df the number of images whose references contain the
n-gram (df < 1 is taken as 1, so n-grams never seen in the references get weight count * log N).
For candidate c and reference r, and each n:
  sim_n = sum_g min(c_g, r_g) r_g / (|c| |r|)     (the "clipped" cosine; left unnormalised when a norm is 0)
        * exp(-delta^2 / (2 sigma^2)),  sigma = 6,
with delta the difference in length between candidate and reference. The image score is
10 * mean_n(sum_r sim_n) / #references, and CIDEr-D is the mean over images (COCO's x1 scale).

As in the reference, `delta` counts bigrams (words - 1, or 0 for an empty caption), which equals the
word-count difference unless exactly one of the two captions is empty. Input is already tokenized:
tokens are the whitespace-separated pieces of each string.
"""
from __future__ import annotations

import collections
import math
from typing import Hashable, Mapping, Sequence

import numpy as np


def _ngrams(tokens: Sequence[str], max_n: int) -> collections.Counter:
  return collections.Counter(tuple(tokens[i:i + n]) for n in range(1, max_n + 1)
                             for i in range(len(tokens) - n + 1))


class _Vector:
  """TF-IDF weights of one caption, split by n-gram order, with their norms and the bigram count."""

  def __init__(self, counts: collections.Counter, df: Mapping[tuple, float], log_n: float, max_n: int):
    self.weights: list[dict[tuple, float]] = [{} for _ in range(max_n)]
    for gram, tf in counts.items():
      self.weights[len(gram) - 1][gram] = tf * (log_n - math.log(max(1.0, df.get(gram, 0.0))))
    self.norms = [math.sqrt(sum(w * w for w in ws.values())) for ws in self.weights]
    self.length = sum(counts[g] for g in self.weights[1]) if max_n > 1 else 0   # number of bigrams


def _similarity(hyp: _Vector, ref: _Vector, sigma: float) -> np.ndarray:
  """Per-order clipped cosine similarity with the Gaussian length penalty."""
  penalty = math.exp(-((hyp.length - ref.length) ** 2) / (2 * sigma ** 2))
  out = np.zeros(len(hyp.weights))
  for n, (h, r) in enumerate(zip(hyp.weights, ref.weights)):
    val = sum(min(w, r[g]) * r[g] for g, w in h.items() if g in r)
    if hyp.norms[n] != 0 and ref.norms[n] != 0:
      val /= hyp.norms[n] * ref.norms[n]
    out[n] = val * penalty
  return out


def cider_d(refs: Mapping[Hashable, Sequence[str]], preds: Mapping[Hashable, str], max_n: int = 4,
            sigma: float = 6.0) -> tuple[float, dict[Hashable, float]]:
  """Corpus CIDEr-D (pycocoevalcap scale, x1) and the per-image scores.

  Document frequencies come from the references of exactly the images passed in, so scores depend on
  the evaluated set (as in the reference implementation).

  Args:
    refs: image id -> tokenized reference captions (at least one per image).
    preds: image id -> tokenized predicted caption; same ids as `refs`.
    max_n: highest n-gram order.
    sigma: width of the Gaussian length penalty.
  """
  if set(refs) != set(preds):
    raise ValueError("refs and preds must have the same image ids")
  if not refs:
    raise ValueError("no images to score")
  ref_counts = {}
  df: collections.Counter = collections.Counter()
  for key, image_refs in refs.items():
    if isinstance(image_refs, str) or not image_refs:
      raise ValueError(f"image {key!r} needs a non-empty list of references")
    ref_counts[key] = [_ngrams(r.split(), max_n) for r in image_refs]
    df.update(set().union(*ref_counts[key]))   # each image counts once per n-gram
  log_n = math.log(len(refs))
  per_image = {}
  for key, counts in ref_counts.items():
    hyp = _Vector(_ngrams(preds[key].split(), max_n), df, log_n, max_n)
    total = sum(_similarity(hyp, _Vector(c, df, log_n, max_n), sigma) for c in counts)
    per_image[key] = float(np.mean(total)) / len(counts) * 10.0
  return float(np.mean(list(per_image.values()))), per_image
