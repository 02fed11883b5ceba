"""SIGTERM (a cluster's preemption) and SIGINT (Ctrl-C) during a run: stop soon, lose nothing, say so.

Inside `with Signals() as signals:` the first SIGTERM or SIGINT only sets `signals.requested`; the training
loop checks it between steps, saves the current step and stops. A second SIGINT aborts at once
(KeyboardInterrupt, nothing saved). Inside `signals.interruptible()` (an evaluation) a signal raises
Interrupted right away, so an evaluation never runs on past a cluster's grace period. The previous handlers
are back when the outermost `with` of an instance exits (the job holds one for its whole run and hands it to
the trainer, so no signal falls between training and evaluation).
"""
from __future__ import annotations

import contextlib
import signal

from absl import logging


class Interrupted(Exception):
  """A SIGTERM or SIGINT stopped an interruptible block (an evaluation)."""

  def __init__(self, signum: int):
    super().__init__(f"{signal.Signals(signum).name} received")
    self.signum = signum


class Signals:
  """Turns SIGTERM and the first SIGINT into a flag (see the module docstring)."""

  def __init__(self):
    self.signum: int | None = None
    self._interruptible = 0
    self._depth = 0
    self._previous = {}

  @property
  def requested(self) -> bool:
    return self.signum is not None

  @property
  def name(self) -> str | None:
    return signal.Signals(self.signum).name if self.signum is not None else None

  def __enter__(self) -> "Signals":
    self._depth += 1
    if self._depth == 1:
      for signum in (signal.SIGTERM, signal.SIGINT):
        try:
          self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # Not in the main thread (e.g. some test runners): signals keep their handlers.
          pass
    return self

  def __exit__(self, *exc) -> None:
    self._depth -= 1
    if self._depth == 0:
      for signum, handler in self._previous.items():
        signal.signal(signum, handler)
      self._previous.clear()

  @contextlib.contextmanager
  def interruptible(self):
    """A block that a signal stops at once (raising Interrupted); one that came before it stops it too."""
    if self.requested:
      raise Interrupted(self.signum)
    self._interruptible += 1
    try:
      yield
    finally:
      self._interruptible -= 1

  def _handle(self, signum, frame) -> None:
    del frame
    if signum == signal.SIGINT and self.requested:
      raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice: aborted without saving")
    if not self.requested:
      self.signum = signum
      again = " (press Ctrl-C again to abort without saving)" if signum == signal.SIGINT else ""
      logging.warning("%s received: stopping after this step with a checkpoint%s", self.name, again)
    if self._interruptible:
      raise Interrupted(signum)
