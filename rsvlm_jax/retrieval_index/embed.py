"""Embeds image files into an IndexStore: only files not yet in its manifest, unreadable ones skipped and named.

Files are matched to manifest rows by real path (a file reached through a symlink or a second glob is one file);
a new path whose bytes equal those of an indexed file that is gone from its own path (a moved folder) takes over
that row (no second row, nothing re-embedded).

Files are read and preprocessed on a thread pool while the model encodes the previous batch; a shard is committed
every `shard_rows` images, so an interrupted build keeps its progress (`add` resumes it). A progress line with the
rate and ETA is logged every `log_every` seconds.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

from rsvlm_jax.retrieval_index import store as store_lib
from rsvlm_jax.runtime import file_hash
from rsvlm_jax.runtime import progress as progress_lib


def log_stderr(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Summary:
  """What one build/add did."""
  added: int = 0
  skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)  # This run's: {"path", "reason"}.
  already: int = 0  # Files already indexed and unchanged.
  changed: list[str] = dataclasses.field(default_factory=list)  # Indexed files whose size/mtime changed since.
  moved: int = 0  # Indexed files found at a new path (same bytes, old path gone): their rows now point there.
  total: int = 0  # Rows in the index afterwards.
  seconds: float = 0.0

  def line(self, directory: str) -> str:
    parts = [f"{len(self.skipped)} skipped (unreadable)", f"{self.already} already indexed"]
    if self.moved:
      parts.append(f"{self.moved} moved (same file at a new path; row updated)")
    if self.changed:
      parts.append(f"{len(self.changed)} changed since indexed (not re-embedded; rebuild to refresh them)")
    return (f"Indexed {self.added} new image(s) into {directory} in {self.seconds:.1f}s: "
            + ", ".join(parts) + f"; {self.total} in the index")


class Progress:
  """Logs `done/total`, rate and ETA at most every `every` seconds (and never for short runs)."""

  def __init__(self, total: int, every: float, log: Callable[[str], None]):
    self.total, self.every, self.log = total, every, log
    self.start = self.last = time.monotonic()

  def update(self, done: int, skipped: int) -> None:
    now = time.monotonic()
    if now - self.last < self.every or done >= self.total:
      return
    self.last = now
    rate = done / max(now - self.start, 1e-9)
    eta = (self.total - done) / rate if rate > 0 else float("inf")
    self.log(f"{done}/{self.total} images done ({skipped} skipped), {rate:.1f} images/s, "
             f"ETA {progress_lib.format_eta(eta)}")


@dataclasses.dataclass
class Plan:
  """What to do with the files of one build/add."""
  todo: list[str]  # Real paths to embed.
  already: int  # Files already indexed (by real path).
  changed: list[str]  # Indexed files whose size or mtime changed since.
  moved: dict[int, dict[str, Any]]  # Row number -> its new manifest row (the file moved there).


def plan(store: store_lib.IndexStore, paths: Sequence[str]) -> Plan:
  """Sorts `paths` into files to embed, files already indexed (changed or not) and indexed files that moved."""
  # Rows of indexes before sha256 hold absolute paths that may run through symlinks: resolved here.
  indexed = {r["path"] if r.get("sha256") else os.path.realpath(r["path"]): r for r in store.rows}
  todo, already, changed = [], 0, []
  for path in dict.fromkeys(os.path.realpath(p) for p in paths):  # Unique, in order.
    row = indexed.get(path)
    if row is None:
      todo.append(path)
      continue
    already += 1
    try:
      st = os.stat(path)
    except OSError:
      continue
    if st.st_size != row["size"] or float(st.st_mtime) != row["mtime"]:
      changed.append(path)
  moved = _moved(store, todo)
  taken = {r["path"] for r in moved.values()}
  return Plan([p for p in todo if p not in taken], already, changed, moved)


def _moved(store: store_lib.IndexStore, todo: Sequence[str]) -> dict[int, dict[str, Any]]:
  """Rows whose file is gone and whose bytes (size, then sha256) equal a file of `todo`: row -> new row."""
  by_size: dict[int, list[int]] = {}
  for i, r in enumerate(store.rows):
    if r.get("sha256"):
      by_size.setdefault(r["size"], []).append(i)
  gone: dict[int, bool] = {}
  moved: dict[int, dict[str, Any]] = {}
  for path in todo if by_size else ():
    try:
      rows = [i for i in by_size.get(os.path.getsize(path), ()) if i not in moved
              and gone.setdefault(i, not os.path.exists(store.rows[i]["path"]))]
      if rows:
        digest = file_hash.file_sha256(path)
        match = next((i for i in rows if store.rows[i]["sha256"] == digest), None)
        if match is not None:
          moved[match] = store_lib.file_row(path, sha256=digest)
    except OSError:
      continue  # Unreadable: embedding it will name it.
  return moved


def check_tuning(batch_size: int, shard_rows: int, log_every: float = 0.0) -> None:
  """Refuses a --batch_size or --shard_rows below 1 and a negative --log_every (before anything is created)."""
  for flag, value in (("--batch_size", batch_size), ("--shard_rows", shard_rows)):
    if value < 1:
      raise ValueError(f"{flag} must be at least 1, got {value}")
  if log_every < 0:
    raise ValueError(f"--log_every must be 0 or more seconds, got {log_every}")


def _read(model, path: str) -> tuple[dict[str, Any], np.ndarray]:
  row = store_lib.file_row(path)
  return row, model.preprocess(path)


def embed_into(store: store_lib.IndexStore, model, paths: Sequence[str], *, batch_size: int = 32,
               shard_rows: int = 65536, log_every: float = 5.0, workers: int | None = None,
               log: Callable[[str], None] = log_stderr) -> Summary:
  """Embeds the files of `paths` that `store` does not hold yet; returns the Summary (also logged per skip)."""
  check_tuning(batch_size, shard_rows, log_every)
  t0 = time.monotonic()
  work = plan(store, paths)
  todo, changed = work.todo, work.changed
  summary = Summary(already=work.already, changed=changed, moved=len(work.moved))
  if work.moved:
    rows = [work.moved.get(i, r) for i, r in enumerate(store.rows)]
    store.rewrite(range(store.count), rows)
    log(f"{len(work.moved)} indexed file(s) found at a new path with the same bytes (their old path is gone), e.g. "
        f"{next(iter(work.moved.values()))['path']}: their rows now point there (not embedded again)")
  if changed:
    log(f"{len(changed)} indexed file(s) changed since they were indexed (size or mtime), e.g. {changed[0]}; "
        "they keep their old embeddings (rebuild with build --overwrite to refresh them)")
  progress = Progress(len(todo), log_every, log)
  pending_rows: list[dict[str, Any]] = []
  pending_emb: list[np.ndarray] = []
  workers = workers or min(8, os.cpu_count() or 1)
  batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    submit = lambda batch: [pool.submit(_read, model, p) for p in batch]
    futures = submit(batches[0]) if batches else []
    for b, batch in enumerate(batches):
      current, futures = futures, (submit(batches[b + 1]) if b + 1 < len(batches) else [])
      rows, images = [], []
      for path, future in zip(batch, current):
        try:
          row, image = future.result()
        except Exception as e:  # pylint: disable=broad-except  # Any unreadable file is skipped and named.
          reason = str(e) if path in str(e) else f"{path}: {type(e).__name__}: {e}"
          log(f"skipped: {reason}")
          summary.skipped.append({"path": path, "reason": reason})
          continue
        rows.append(row)
        images.append(image)
      if images:
        pending_rows.extend(rows)
        pending_emb.append(model.encode_images(np.stack(images), batch_size=batch_size))
        summary.added += len(rows)
      while len(pending_rows) >= shard_rows:  # Shards of exactly shard_rows rows (the last one may be shorter).
        emb = np.concatenate(pending_emb)
        store.append(pending_rows[:shard_rows], emb[:shard_rows])
        pending_rows, pending_emb = pending_rows[shard_rows:], [emb[shard_rows:]]
      progress.update(summary.added + len(summary.skipped), len(summary.skipped))
  if pending_rows:
    store.append(pending_rows, np.concatenate(pending_emb))
  attempted = set(todo)
  indexed = set(store.paths())
  kept = [s for s in store.meta.get("skipped", []) if s["path"] not in attempted and s["path"] not in indexed]
  store.set_skipped(kept + summary.skipped)
  summary.total, summary.seconds = store.count, time.monotonic() - t0
  return summary
