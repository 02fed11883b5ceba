"""Typed per-example transforms (plain callables on dicts of numpy arrays; usable eagerly and in grain).

Each transform reads a record field and writes model inputs:
  ResizeImage        "image" uint8 [H,W,3] -> "image" uint8 [r,r,3] (antialiased; optionally detail-capped)
  TokenizeCaption    "captions" -> "text" int32 [L] (one caption, chosen by the example's rng)
  PhraseTokens       "caption" -> "phrases" int32 [P,Lp] (rule-based noun chunks)
  ObjectTargets      "objects" -> "obj_boxes" [O,4], "obj_labels" [O], "obj_mask" [O], "obj_names" [O,Lp]
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
from PIL import Image

from rsvlm_jax.data import phrases as phrases_lib
from rsvlm_jax.data import sources
from rsvlm_jax.data.tokenizer import Tokenizer
from rsvlm_jax.runtime.mixed_batch import IMAGE_KEYS  # Re-exported: transforms.IMAGE_KEYS.


def resize(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 [H,W,C] -> uint8 [size,size,C] with PIL's antialiased bilinear filter."""
  if image.shape[0] == size and image.shape[1] == size:
    return image
  return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


@dataclasses.dataclass(frozen=True)
class ResizeImage:
  """Resizes to `resolution`; `detail_res` > 0 first passes the image through detail_res px, so the model
  sees the same number of tokens but no detail finer than detail_res (an ablation of how much detail a
  model uses; config key input.detail_res)."""
  resolution: int
  detail_res: int = 0

  def __call__(self, ex: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    del rng
    image = ex["image"]
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
      raise ValueError(f"Expected uint8 [H,W,3] image, got {image.dtype} {image.shape}")
    ex["image"] = resize(resize(image, self.detail_res) if self.detail_res else image, self.resolution)
    return ex


@dataclasses.dataclass(frozen=True)
class TokenizeCaption:
  """Picks one caption (uniformly, from the example rng; the first if `pick_first`) and tokenizes it."""
  tokenizer: Tokenizer
  max_len: int
  pick_first: bool = False

  def __call__(self, ex, rng):
    captions = [c for c in sources.as_text_list(ex["captions"]) if c.strip()]
    if not captions:
      raise ValueError(f"Record {sources.as_text(ex.get('image_id', '?'))!r} has no non-empty caption")
    caption = captions[0] if self.pick_first else captions[int(rng.integers(len(captions)))]
    ex["caption"] = caption
    ex["text"] = self.tokenizer.encode(caption, self.max_len)
    return ex


@dataclasses.dataclass(frozen=True)
class PhraseTokens:
  tokenizer: Tokenizer
  max_phrases: int
  phrase_len: int

  def __call__(self, ex, rng):
    del rng
    out = np.zeros((self.max_phrases, self.phrase_len), np.int32)
    chunks = phrases_lib.extract_phrases(ex["caption"], self.max_phrases)
    for i, p in enumerate(chunks[:self.max_phrases]):
      out[i] = self.tokenizer.encode(p, self.phrase_len)
    ex["phrases"] = out
    return ex


@dataclasses.dataclass(frozen=True)
class ObjectTargets:
  """Boxes, labels and tokenized class-name phrases, padded to `max_objects` (largest boxes kept)."""
  tokenizer: Tokenizer
  class_names: Sequence[str]
  max_objects: int
  name_len: int

  def __call__(self, ex, rng):
    del rng
    objs = ex.get("objects") or {}
    boxes = np.asarray(objs.get("bbox", np.zeros((0, 4))), np.float32).reshape(-1, 4)
    labels = np.asarray(objs.get("label", np.zeros((0,))), np.int32).reshape(-1)
    if len(boxes) > self.max_objects:  # Keep the largest objects, in a deterministic order.
      area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
      keep = np.sort(np.argsort(-area, kind="stable")[:self.max_objects])
      boxes, labels = boxes[keep], labels[keep]
    n = len(boxes)
    ex["obj_boxes"] = np.zeros((self.max_objects, 4), np.float32)
    ex["obj_boxes"][:n] = boxes
    ex["obj_labels"] = np.zeros((self.max_objects,), np.int32)
    ex["obj_labels"][:n] = labels
    ex["obj_mask"] = np.arange(self.max_objects) < n
    ex["obj_names"] = np.zeros((self.max_objects, self.name_len), np.int32)
    for i, label in enumerate(labels):
      ex["obj_names"][i] = self.tokenizer.encode(phrases_lib.object_phrase(self.class_names[label]), self.name_len)
    return ex


MODEL_KEYS = IMAGE_KEYS + ("text", "phrases", "obj_boxes", "obj_labels", "obj_mask", "obj_names")


def apply_all(transforms, record: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Runs `transforms` on a copy of `record`; returns only the model inputs."""
  ex = dict(record)
  for t in transforms:
    ex = t(ex, rng)
  return {k: ex[k] for k in MODEL_KEYS if k in ex}
