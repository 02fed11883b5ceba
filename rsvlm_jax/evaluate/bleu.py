"""Corpus BLEU-1..4 as computed by pycocoevalcap's `Bleu(4)` (the COCO caption evaluation).

Per image: clipped n-gram matches against the maximum count over that image's references, candidate
n-gram counts, and the reference length closest to the candidate length (ties go to the shorter).
These are summed over the corpus, and BLEU-n is the geometric mean of the precisions 1..n with the
brevity penalty exp(1 - r/c) when c < r. Like the reference, every precision is taken as
(matches + 1e-15) / (candidates + 1e-9), and the length ratio as (c + 1e-15) / (r + 1e-9), so an empty
candidate or a corpus with no 4-grams scores ~0 instead of dividing by zero.

Input is already tokenized: tokens are the whitespace-separated pieces of each string.
"""
from __future__ import annotations

import collections
import math
from typing import Hashable, Mapping, Sequence

_TINY = 1e-15   # added to matches and candidate length
_SMALL = 1e-9   # added to candidate n-gram counts and reference length


def _ngrams(tokens: Sequence[str], max_n: int) -> collections.Counter:
  return collections.Counter(tuple(tokens[i:i + n]) for n in range(1, max_n + 1)
                             for i in range(len(tokens) - n + 1))


def _bleu(correct: Sequence[float], guess: Sequence[float], hyp_len: float, ref_len: float) -> list[float]:
  """BLEU-1..n from match counts, candidate counts and lengths (the reference's smoothing)."""
  scores, prod = [], 1.0
  for k, (c, g) in enumerate(zip(correct, guess)):
    prod *= (c + _TINY) / (g + _SMALL)
    scores.append(prod ** (1.0 / (k + 1)))
  ratio = (hyp_len + _TINY) / (ref_len + _SMALL)
  if ratio < 1:
    scores = [s * math.exp(1 - 1 / ratio) for s in scores]
  return scores


def _image_stats(hyp: str, refs: Sequence[str], max_n: int) -> tuple[list[int], list[int], int, int]:
  """Clipped matches, candidate n-gram counts, candidate length and closest reference length."""
  hyp_tokens = hyp.split()
  max_ref = collections.Counter()
  ref_lens = []
  for ref in refs:
    ref_tokens = ref.split()
    ref_lens.append(len(ref_tokens))
    max_ref |= _ngrams(ref_tokens, max_n)   # `|` keeps the maximum count of each n-gram
  correct = [0] * max_n
  for gram, count in _ngrams(hyp_tokens, max_n).items():
    correct[len(gram) - 1] += min(count, max_ref[gram])
  hyp_len = len(hyp_tokens)
  guess = [max(0, hyp_len - k) for k in range(max_n)]
  closest = min(ref_lens, key=lambda r: (abs(r - hyp_len), r))
  return correct, guess, hyp_len, closest


def corpus_bleu(refs: Mapping[Hashable, Sequence[str]], preds: Mapping[Hashable, str], max_n: int = 4
                ) -> tuple[list[float], dict[Hashable, list[float]]]:
  """Corpus BLEU-1..max_n (pycocoevalcap scale, 0..1) and per-image BLEU-1..max_n.

  Args:
    refs: image id -> tokenized reference captions (at least one per image).
    preds: image id -> tokenized predicted caption; same ids as `refs`.
    max_n: highest n-gram order.

  Returns:
    ([BLEU-1, ..., BLEU-max_n] over the corpus, {image id: [BLEU-1, ..., BLEU-max_n] of that image}).
  """
  if set(refs) != set(preds):
    raise ValueError("refs and preds must have the same image ids")
  if not refs:
    raise ValueError("no images to score")
  correct, guess, hyp_len, ref_len = [0] * max_n, [0] * max_n, 0, 0
  per_image = {}
  for key, image_refs in refs.items():
    if isinstance(image_refs, str) or not image_refs:
      raise ValueError(f"image {key!r} needs a non-empty list of references")
    c, g, h, r = _image_stats(preds[key], image_refs, max_n)
    per_image[key] = _bleu(c, g, h, r)
    correct = [a + b for a, b in zip(correct, c)]
    guess = [a + b for a, b in zip(guess, g)]
    hyp_len, ref_len = hyp_len + h, ref_len + r
  return _bleu(correct, guess, hyp_len, ref_len), per_image
