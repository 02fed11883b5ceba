"""Run artefacts (tokenizer, DRIS scores and thresholds) computed once by process 0 and read by the others."""
from __future__ import annotations

from typing import Callable, TypeVar

import jax

T = TypeVar("T")


def compute_once(make: Callable[[], T], load: Callable[[], T], name: str) -> T:
  """Process 0 runs `make` (which writes the artefact); the others wait at a barrier, then `load` it."""
  if jax.process_count() == 1:
    return make()
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  value = make() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices(f"rsvlm:{name}")
  return value if value is not None else load()
