"""ROUGE-L as computed by pycocoevalcap's `Rouge` (the COCO caption evaluation).

Per image: with L_r the longest common subsequence (LCS) of the candidate and reference r, precision
P = max_r L_r / |candidate| and recall R = max_r L_r / |r| (each maximised separately over the references),
and ROUGE-L = (1 + b^2) P R / (R + b^2 P) with b = 1.2, or 0 when P or R is 0. The corpus score is the
mean over images.

Input is already tokenized. Like the reference, strings are split on single spaces, so "" is one empty
token (length 1, never a zero division) and a double space yields an empty token.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
  """Length of the longest common subsequence of two token sequences (bit-parallel, O(|a| |b| / 64))."""
  if len(a) < len(b):
    a, b = b, a
  masks: dict[str, int] = {}
  for i, token in enumerate(a):   # bit i of masks[t]: a[i] == t
    masks[token] = masks.get(token, 0) | (1 << i)
  full = (1 << len(a)) - 1
  v = full   # zero bits of v mark the positions of a used by an LCS of a and the prefix of b seen so far
  for token in b:
    u = v & masks.get(token, 0)
    v = ((v + u) | (v - u)) & full
  return len(a) - bin(v).count("1")


def _image_score(hyp: str, refs: Sequence[str], beta: float) -> float:
  hyp_tokens = hyp.split(" ")
  prec = rec = 0.0
  for ref in refs:
    ref_tokens = ref.split(" ")
    lcs = lcs_length(hyp_tokens, ref_tokens)
    prec = max(prec, lcs / len(hyp_tokens))
    rec = max(rec, lcs / len(ref_tokens))
  if prec == 0 or rec == 0:
    return 0.0
  return (1 + beta ** 2) * prec * rec / (rec + beta ** 2 * prec)


def rouge_l(refs: Mapping[Hashable, Sequence[str]], preds: Mapping[Hashable, str], beta: float = 1.2
            ) -> tuple[float, dict[Hashable, float]]:
  """Mean ROUGE-L over images (pycocoevalcap scale, 0..1) and the per-image scores.

  Args:
    refs: image id -> tokenized reference captions (at least one per image).
    preds: image id -> tokenized predicted caption; same ids as `refs`.
    beta: recall weight of the F-measure.
  """
  if set(refs) != set(preds):
    raise ValueError("refs and preds must have the same image ids")
  if not refs:
    raise ValueError("no images to score")
  per_image = {}
  for key, image_refs in refs.items():
    if isinstance(image_refs, str) or not image_refs:
      raise ValueError(f"image {key!r} needs a non-empty list of references")
    per_image[key] = _image_score(preds[key], image_refs, beta)
  return float(np.mean(list(per_image.values()))), per_image
