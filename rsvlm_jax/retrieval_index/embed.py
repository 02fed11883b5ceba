"""Embeds image files into an IndexStore: only files not yet in its manifest, unreadable ones skipped and named.

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
  total: int = 0  # Rows in the index afterwards.
  seconds: float = 0.0

  def line(self, directory: str) -> str:
    parts = [f"{len(self.skipped)} skipped (unreadable)", f"{self.already} already indexed"]
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


def plan(store: store_lib.IndexStore, paths: Sequence[str]) -> tuple[list[str], int, list[str]]:
  """(files to embed, number already indexed and unchanged, indexed files changed since) of `paths`."""
  indexed = {r["path"]: r for r in store.rows}
  todo, already, changed = [], 0, []
  for path in dict.fromkeys(os.path.abspath(p) for p in paths):  # Unique, in order.
    row = indexed.get(path)
    if row is None:
      todo.append(path)
      continue
    already += 1
    try:
      now = store_lib.file_row(path)
    except OSError:
      continue
    if now["size"] != row["size"] or now["mtime"] != row["mtime"]:
      changed.append(path)
  return todo, already, changed


def _read(model, path: str) -> tuple[dict[str, Any], np.ndarray]:
  row = store_lib.file_row(path)
  return row, model.preprocess(path)


def embed_into(store: store_lib.IndexStore, model, paths: Sequence[str], *, batch_size: int = 32,
               shard_rows: int = 65536, log_every: float = 5.0, workers: int | None = None,
               log: Callable[[str], None] = log_stderr) -> Summary:
  """Embeds the files of `paths` that `store` does not hold yet; returns the Summary (also logged per skip)."""
  t0 = time.monotonic()
  todo, already, changed = plan(store, paths)
  summary = Summary(already=already, changed=changed)
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
