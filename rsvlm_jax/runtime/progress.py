"""Progress lines with rate and ETA for long loops (dataset scoring, tools, evaluation), and the ETA format."""
from __future__ import annotations

import time

import numpy as np
from absl import logging


class ItemProgress:
  """`update(done)` logs "what: done/total (pct), rate/s, ETA h:mm:ss" now and then, and always at the end."""

  def __init__(self, total: int, what: str = "images", every_s: float = 5.0):
    self.total, self.what, self.every_s = total, what, every_s
    self._t0 = self._last = time.time()

  def update(self, done: int) -> None:
    now = time.time()
    if now - self._last < self.every_s and done < self.total:
      return
    self._last = now
    rate = done / max(now - self._t0, 1e-9)
    eta = (self.total - done) / rate if rate > 0 else float("nan")
    logging.info("%s: %d/%d (%.0f%%), %.1f/s, ETA %s", self.what, done, self.total,
                 100.0 * done / max(self.total, 1), rate, format_eta(eta))


def format_eta(seconds: float) -> str:
  """Seconds -> "h:mm:ss" ("?" when unknown: inf or NaN)."""
  if not np.isfinite(seconds):
    return "?"
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h:d}:{m:02d}:{s:02d}"
