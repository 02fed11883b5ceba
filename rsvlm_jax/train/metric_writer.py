"""Metric sinks: JSONL (one object per line), TensorBoard event files, and a console progress line."""
from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from rsvlm_jax.runtime.progress import format_eta


def _scalar(v: Any):
  v = np.asarray(v)
  return v.item() if v.size == 1 else v.tolist()


class MetricWriter:
  """Writes `{"step", ...}` lines to WORKDIR/metrics.jsonl and scalars to TensorBoard (process 0)."""

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    self.active = jax.process_index() == 0
    self._jsonl = None
    self._tb = None
    if self.active:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", buffering=1)
      if tensorboard:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    if not self.active:
      return
    row = {"step": int(step), **{k: _scalar(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(row) + "\n")
    if self._tb is not None:
      for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)):
          self._tb.add_scalar(k, v, step)

  def close(self) -> None:
    if self._jsonl:
      self._jsonl.close()
    if self._tb:
      self._tb.close()


class Progress:
  """Console line: step, loss, steps/s and ETA, every `every` steps."""

  def __init__(self, total_steps: int, start_step: int, every: int):
    self.total, self.every = total_steps, max(1, every)
    self._t0, self._s0 = time.time(), start_step

  def __call__(self, step: int, loss: float) -> None:
    if step % self.every and step != self.total:
      return
    elapsed = time.time() - self._t0
    rate = (step - self._s0) / max(elapsed, 1e-9)
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    logging.info("step %d/%d  loss %.4f  %.2f steps/s  ETA %s", step, self.total, loss, rate, format_eta(eta))
