"""Mixed-bucket batches: one sub-batch per DRIS bucket in every train step, each with its own static shape.

The host assembles them (`combine`): the image field becomes a `PerBucket` of per-bucket arrays in ascending
bucket order, and every other field is concatenated in the same order, so example i is the same example in
every field. `PerBucket` is a pytree: it shards, transfers and jits like any array field, and the model's
image encoder is the one place that takes it apart (each part encoded at its own shape, the pooled outputs
concatenated).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax
import numpy as np

IMAGE_KEYS = ("image",)  # Model inputs whose shape depends on the DRIS bucket.


@flax.struct.dataclass
class PerBucket:
  """One image field of a mixed batch: `parts[k]` holds the examples of the k-th bucket present."""
  parts: tuple[Any, ...]

  @property
  def shape_key(self) -> str:
    return "+".join(str(tuple(p.shape)) for p in self.parts)


def combine(sub_batches: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
  """Per-bucket sub-batches (ascending bucket) -> one mixed batch (private "_" fields dropped)."""
  keys = [k for k in sub_batches[0] if not k.startswith("_")]
  out = {}
  for k in keys:
    parts = [sb[k] for sb in sub_batches]
    out[k] = PerBucket(tuple(parts)) if k in IMAGE_KEYS else np.concatenate(parts, axis=0)
  return out


def shape_key(batch: dict[str, Any]) -> str:
  """A string naming every field's shape (per bucket for PerBucket fields): the compile-cache key."""
  def one(v):
    return v.shape_key if isinstance(v, PerBucket) else str(tuple(v.shape))
  return ",".join(f"{k}{one(v)}" for k, v in sorted(batch.items()))
