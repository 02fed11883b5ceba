"""COCO-style caption metrics: BLEU-1..4, ROUGE-L, CIDEr-D (and optionally METEOR).

Numbers are on pycocoevalcap's scale (x1, CIDEr-D not x100) and equal its scorers given the same text:
captions go through `ptb_tokenizer.tokenize` (the pure-Python equivalent of its Java PTBTokenizer),
then `bleu`, `rouge` and `cider` re-implement its scorers. METEOR needs Java and pycocoevalcap's
METEOR 1.5 jar; it is skipped with a logged message when either is missing.
"""
from __future__ import annotations

import shutil
from typing import Any, Hashable, Mapping, Sequence

from absl import logging

from rsvlm_jax.evaluate import bleu
from rsvlm_jax.evaluate import cider
from rsvlm_jax.evaluate import ptb_tokenizer
from rsvlm_jax.evaluate import rouge

KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D")
_MAX_LISTED = 5


def validate(refs: Mapping[Hashable, Sequence[str]], preds: Mapping[Hashable, Any]) -> None:
  """Raises ValueError / TypeError unless refs and preds describe the same images properly."""
  if not isinstance(refs, Mapping) or not isinstance(preds, Mapping):
    raise TypeError("refs and preds must be dicts keyed by image id")
  missing = [k for k in refs if k not in preds]
  extra = [k for k in preds if k not in refs]
  if missing or extra:
    parts = [f"{len(ids)} image id(s) {what} (first {min(len(ids), _MAX_LISTED)}: {ids[:_MAX_LISTED]!r})"
             for ids, what in ((missing, "in refs but not in preds"), (extra, "in preds but not in refs"))
             if ids]
    raise ValueError("refs and preds must have the same image ids: " + "; ".join(parts))
  if not refs:
    raise ValueError("no images to score: refs and preds are empty")
  for key, image_refs in refs.items():
    if isinstance(image_refs, str) or not isinstance(image_refs, Sequence):
      raise TypeError(f"references of image {key!r} must be a list of strings, got {type(image_refs).__name__}")
    if not all(isinstance(r, str) for r in image_refs):
      raise TypeError(f"references of image {key!r} must all be strings")
    if not any(r.strip() for r in image_refs):
      raise ValueError(f"image {key!r} has no non-empty reference caption")
    if not isinstance(preds[key], str):
      raise TypeError(f"prediction for image {key!r} must be a string, got {type(preds[key]).__name__}")


def _meteor(refs: dict[Hashable, list[str]], preds: dict[Hashable, str]) -> float | None:
  """pycocoevalcap's METEOR 1.5 (Java), or None (logged) when it cannot run."""
  if shutil.which("java") is None:
    logging.warning("METEOR skipped: `java` is not on PATH (pycocoevalcap's METEOR 1.5 needs Java).")
    return None
  try:
    from pycocoevalcap.meteor import meteor as meteor_lib  # pylint: disable=g-import-not-at-top
  except ImportError:
    logging.warning("METEOR skipped: pycocoevalcap is not installed (pip install pycocoevalcap).")
    return None
  try:
    scorer = meteor_lib.Meteor()
    score, _ = scorer.compute_score({k: [_one_line(r) for r in v] for k, v in refs.items()},
                                    {k: [_one_line(preds[k])] for k in refs})
    del scorer   # stops the Java process
  except (OSError, ValueError) as e:
    logging.warning("METEOR skipped: pycocoevalcap's METEOR failed (%s).", e)
    return None
  return float(score)


def _one_line(text: str) -> str:
  """The METEOR jar reads one request per line, fields separated by "|||"."""
  return " ".join(text.replace("|||", " ").split())


def caption_metrics(refs: Mapping[Hashable, Sequence[str]], preds: Mapping[Hashable, str], *,
                    tokenize: bool = True, meteor: bool = False) -> dict[str, float]:
  """BLEU-1..4, ROUGE-L and CIDEr-D of `preds` against `refs`, as pycocoevalcap computes them.

  Args:
    refs: image id -> reference captions; every image needs at least one non-empty one (empty ones
      are kept and scored, as pycocoevalcap would).
    preds: image id -> predicted caption; exactly the ids of `refs`.
    tokenize: PTB-tokenize, lower-case and strip punctuation first (what pycocoevalcap does);
      False when the text is already tokenized (tokens are then split on whitespace).
    meteor: also compute "METEOR" (needs Java; skipped with a logged message if unavailable).

  Returns:
    {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"[, "METEOR"]} -> float.
  """
  validate(refs, preds)
  prep = ptb_tokenizer.tokenize if tokenize else (lambda s: s)
  tok_refs = {k: [prep(r) for r in v] for k, v in refs.items()}
  tok_preds = {k: prep(preds[k]) for k in refs}
  bleus, _ = bleu.corpus_bleu(tok_refs, tok_preds)
  out = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleus)}
  out["ROUGE-L"] = rouge.rouge_l(tok_refs, tok_preds)[0]
  out["CIDEr-D"] = cider.cider_d(tok_refs, tok_preds)[0]
  if meteor:
    score = _meteor(tok_refs, tok_preds)
    if score is not None:
      out["METEOR"] = score
  return out
