"""Counts XLA compilations (via jax.monitoring), so a run can log and assert one per bucket and mode."""
from __future__ import annotations

import threading

import jax

_BACKEND_EVENT = "/jax/core/compile/backend_compile_duration"
_lock = threading.Lock()
_count = 0
_installed = False


def _listener(event: str, duration_secs: float = 0.0, **kwargs) -> None:
  del duration_secs, kwargs
  global _count
  if event == _BACKEND_EVENT:
    with _lock:
      _count += 1


def install() -> None:
  """Registers the listener once per process."""
  global _installed
  if not _installed:
    jax.monitoring.register_event_duration_secs_listener(_listener)
    _installed = True


def count() -> int:
  """Backend compilations so far in this process (all functions)."""
  return _count


class Tracker:
  """Tracks the compilations of named (function, shape) keys: `tracker.note(key)` after each call."""

  def __init__(self):
    install()
    self.keys: dict[str, int] = {}

  def call(self, key: str, fn, *args):
    before = count()
    out = fn(*args)
    compiled = count() - before
    if compiled:
      self.keys[key] = self.keys.get(key, 0) + compiled
    return out

  def summary(self) -> dict[str, int]:
    return dict(self.keys)
