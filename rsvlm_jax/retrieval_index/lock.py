"""One writer per INDEX: INDEX/index.lock names its holder (host, pid, start time), as run.lock does for runs.

`build`, `add` and `prune` hold it while they write; a second writer is refused at once with an error naming the
index and the holder (queries read without it: index.json is replaced atomically after each commit). A lock whose
process is gone from this host (kill -9, OOM) is stale and taken over; one held from another host can only be
removed by hand. The liveness checks are rsvlm_jax/runtime/run_lock.py's.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid

from rsvlm_jax.runtime import run_lock

LOCK_FILE = "index.lock"


class IndexLockedError(RuntimeError):
  """Another process is writing the index."""


class IndexLock:
  """`with IndexLock(INDEX):` holds INDEX/index.lock (the folder must exist) or raises IndexLockedError."""

  def __init__(self, directory: str):
    self.directory = os.path.abspath(directory)
    self.path = os.path.join(self.directory, LOCK_FILE)
    self.token = None  # This holder's id in the lock file (tells threads of one process apart).

  def acquire(self) -> IndexLock:
    me = {"host": socket.gethostname(), "pid": os.getpid(), "proc_start": run_lock.proc_start(os.getpid()),
          "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "token": uuid.uuid4().hex}
    for _ in range(3):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = run_lock._read(self.path)  # pylint: disable=protected-access
        torn = not holder and time.time() - run_lock._mtime(self.path) > 60  # pylint: disable=protected-access
        if (holder.get("host") == me["host"] and not run_lock._alive(holder)) or torn:  # pylint: disable=protected-access
          print(f"Taking over the stale lock {self.path} (holder {holder or 'unknown'} is gone)",
                file=sys.stderr, flush=True)
          run_lock._remove(self.path)  # pylint: disable=protected-access
          continue
        raise IndexLockedError(
            f"{self.directory} is being written by pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"(since {holder.get('started', '?')}; {LOCK_FILE}): two writers at once would corrupt it. Wait for "
            f"that one to finish and run this again; if it died on another machine, delete {self.path}")
      with os.fdopen(fd, "w") as f:
        json.dump(me, f)
      self.token = me["token"]
      return self
    raise IndexLockedError(f"{self.path}: could not take the index lock (another writer keeps taking it)")

  def release(self) -> None:
    if self.token is None:
      return
    token, self.token = self.token, None
    if run_lock._read(self.path).get("token") == token:  # pylint: disable=protected-access
      run_lock._remove(self.path)  # pylint: disable=protected-access

  def __enter__(self) -> IndexLock:
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
