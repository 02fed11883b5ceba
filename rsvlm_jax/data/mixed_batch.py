"""Mixed-bucket batches: one sub-batch per DRIS bucket in every train step, each with its own static shape.

On the host a sub-batch's fields are tagged with their bucket ("image@0", "text@0", "image@2", ...), so
the batch stays a flat dict of arrays that shards like any other. Inside the jitted step `merge` turns it
back into one batch: the image fields become a list of per-bucket arrays (ascending bucket) and every
other field is concatenated in the same order, so example i of the merged batch is the same example in
every field. The model encodes each image array separately and concatenates what it pools.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from rsvlm_jax.data.transforms import IMAGE_KEYS

SEP = "@"


def tag(batch: dict[str, Any], bucket: int) -> dict[str, Any]:
  """Host side: names every field of one bucket's sub-batch `<field>@<bucket>` (private "_" fields dropped)."""
  return {f"{k}{SEP}{bucket}": v for k, v in batch.items() if not k.startswith("_")}


def merge(batch: dict[str, Any]) -> dict[str, Any]:
  """In the step: image fields -> [per-bucket arrays], other fields concatenated in ascending bucket order."""
  parts: dict[str, dict[int, Any]] = {}
  out: dict[str, Any] = {}
  for k, v in batch.items():
    if SEP not in k:
      out[k] = v
      continue
    name, bucket = k.rsplit(SEP, 1)
    parts.setdefault(name, {})[int(bucket)] = v
  for name, by_bucket in parts.items():
    ordered = [by_bucket[b] for b in sorted(by_bucket)]
    out[name] = ordered if name in IMAGE_KEYS else jnp.concatenate(ordered, axis=0)
  return out
