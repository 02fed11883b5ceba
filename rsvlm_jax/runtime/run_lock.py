"""One job per workdir: WORKDIR/run.lock names its holder (host, pid, start time).

A second job on the same workdir fails naming the holder. A lock whose process is gone from this host
(kill -9, OOM) is stale and taken over; one held from another host can only be removed by hand.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import time

from absl import logging

LOCK_FILE = "run.lock"


class WorkdirLockedError(RuntimeError):
  pass


def proc_start(pid: int) -> str | None:
  """The kernel's start time of `pid` (Linux /proc), telling a live holder from a reused pid."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def pid_alive(pid: int, start: str | None = None) -> bool:
  """Whether process `pid` of this host runs, and is the one started at `start` (a reused pid is not)."""
  if pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # Alive, another user's.
  now = proc_start(pid)
  return not (start and now and now != start)


def _alive(holder: dict) -> bool:
  return pid_alive(int(holder.get("pid", -1)), holder.get("proc_start"))


def _read(path: str) -> dict:
  try:
    with open(path) as f:
      holder = json.load(f)
    return holder if isinstance(holder, dict) else {}
  except (OSError, ValueError):
    return {}


class WorkdirLock:
  """`acquire()` takes WORKDIR/run.lock or raises WorkdirLockedError; `release()` (also at exit) frees it."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self.held = False

  def acquire(self) -> "WorkdirLock":
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "proc_start": proc_start(os.getpid()),
          "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    for _ in range(3):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = _read(self.path)
        same_host = holder.get("host") == me["host"]
        if same_host and holder.get("pid") == me["pid"]:  # This process already holds it (an earlier Trainer).
          self.held = True
          return self
        torn = not holder and time.time() - _mtime(self.path) > 60  # Holder died between create and write.
        if (same_host and not _alive(holder)) or torn:
          logging.warning("Taking over the stale lock %s (holder %s is gone)", self.path, holder or "unknown")
          _remove(self.path)
          continue
        raise WorkdirLockedError(
            f"{self.path}: the workdir is in use by pid {holder.get('pid', '?')} on host "
            f"{holder.get('host', '?')} (started {holder.get('started', '?')}); two jobs on one workdir would "
            f"both write its checkpoints and metrics. Wait for that job or stop it; if it died on another "
            f"machine, delete {self.path}.")
      with os.fdopen(fd, "w") as f:
        json.dump(me, f)
      self.held = True
      atexit.register(self.release)
      return self
    raise WorkdirLockedError(f"{self.path}: could not take the workdir lock (another job keeps taking it)")

  def release(self) -> None:
    if not self.held:
      return
    self.held = False
    holder = _read(self.path)
    if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
      _remove(self.path)


def _mtime(path: str) -> float:
  try:
    return os.path.getmtime(path)
  except OSError:
    return time.time()


def _remove(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass
