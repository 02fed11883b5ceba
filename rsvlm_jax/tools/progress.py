"""A progress line with rate and ETA for the tools' long loops (logged at most every `every_s` seconds)."""
from __future__ import annotations

import time

from absl import logging

from rsvlm_jax.train import metric_writer


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
                 100.0 * done / max(self.total, 1), rate, metric_writer.format_eta(eta))
