"""The INDEX directory: image embeddings, the files they come from, and the model that made them.

  INDEX/
    index.json             {"format", "model", "model_step", "model_config_sha256", "resolution", "embed_dim",
                            "count", "created", "updated", "shards": [{"file", "rows"}],
                            "skipped": [{"path", "reason"}], "manifest" (absent: manifest.jsonl)}
    manifest.jsonl         one {"path", "size", "mtime", "sha256"} per embedding row, in row order (paths absolute,
                           symlinks resolved; sha256 of the file's bytes, absent in rows of older indexes)
    embeddings_00000.npy   float32 [rows, embed_dim], L2-normalised; one shard per commit
    index.lock             while a writer (build, add, prune) holds the index (lock.py)

A commit writes the new shard, appends its manifest rows, then replaces index.json atomically. index.json is the
truth: manifest rows beyond its count and shards it does not list are leftovers of an interrupted commit, ignored
and overwritten by the next one, so an interrupted build keeps every committed shard and resumes with `add`.
A rewrite (prune, or rows pointed at files that moved) writes new shards and a new manifest_NNNNN.jsonl under new
names, then index.json, then deletes the files it replaced: interrupted, the index is the old one.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
from typing import Any, Iterator, Sequence

import numpy as np

from rsvlm_jax.runtime import file_hash

FORMAT = "rsvlm_jax.index/1"
INDEX_JSON = "index.json"
MANIFEST = "manifest.jsonl"
IDENTITY_KEYS = ("model", "model_step", "model_config_sha256")
LOCK_FILE = "index.lock"  # lock.LOCK_FILE (not imported here: reading an index needs no lock).


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def model_identity(model) -> dict[str, Any]:
  """What identifies a loaded model (rsvlm_jax.load): its directory, checkpoint step and config.json hash."""
  with open(os.path.join(model.directory, "config.json"), "rb") as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  return {"model": os.path.abspath(model.directory), "model_step": int(model.step), "model_config_sha256": sha}


def file_row(path: str, sha256: str | None = None) -> dict[str, Any]:
  """The manifest row of an image file: real path, size in bytes, modification time (seconds), content sha256."""
  st = os.stat(path)
  return {"path": os.path.realpath(path), "size": int(st.st_size), "mtime": float(st.st_mtime),
          "sha256": sha256 or file_hash.file_sha256(path)}


def _entries(directory: str) -> list[str]:
  """What the folder holds besides a writer's lock file."""
  return [e for e in os.listdir(directory) if e != LOCK_FILE]


def check_new(directory: str, overwrite: bool) -> str:
  """Refuses `directory` as a new index (the checks of `create`, run before any slow work); its absolute path."""
  directory = os.path.abspath(os.path.expanduser(directory))
  if os.path.exists(directory) and (not os.path.isdir(directory) or _entries(directory)):
    if not overwrite:
      raise FileExistsError(f"--out {directory} exists and is not empty: add images to an index with `add`, "
                            "or pass --overwrite to replace it")
    if not os.path.isfile(os.path.join(directory, INDEX_JSON)):
      raise FileExistsError(f"--out {directory} exists and is not an index (no {INDEX_JSON}); refusing to "
                            "replace it even with --overwrite")
  return directory


class IndexStore:
  """An INDEX directory opened for reading and appending (see the module docstring)."""

  def __init__(self, directory: str, meta: dict[str, Any], rows: list[dict[str, Any]], manifest_lines: int):
    self.directory, self.meta, self.rows = directory, meta, rows
    self._manifest_lines = manifest_lines  # Lines on disk (more than count after an interrupted commit).

  # ------------------------------------------------------------------ create / open

  @classmethod
  def create(cls, directory: str, *, identity: dict[str, Any], embed_dim: int, resolution: int | None = None,
             overwrite: bool = False) -> IndexStore:
    """A new empty index; an existing non-empty directory is refused unless `overwrite` (and it is an index).

    Replacing an index deletes what the folder holds except the lock file (which the caller holds).
    """
    directory = check_new(directory, overwrite)
    if os.path.isdir(directory):
      for entry in _entries(directory):
        path = os.path.join(directory, entry)
        if os.path.isdir(path) and not os.path.islink(path):
          shutil.rmtree(path)
        else:
          os.remove(path)
    os.makedirs(directory, exist_ok=True)
    now = _now()
    meta = {"format": FORMAT, **{k: identity[k] for k in IDENTITY_KEYS}, "resolution": resolution,
            "embed_dim": int(embed_dim), "count": 0, "created": now, "updated": now, "shards": [], "skipped": []}
    store = cls(directory, meta, [], 0)
    open(os.path.join(directory, MANIFEST), "w").close()
    store._write_meta()
    return store

  @classmethod
  def open(cls, directory: str) -> IndexStore:
    directory = os.path.abspath(os.path.expanduser(directory))
    path = os.path.join(directory, INDEX_JSON)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"--index {directory} is not an index: no {INDEX_JSON} (create one with "
                              "python -m rsvlm_jax.tools.index build)")
    try:
      with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from e
    if meta.get("format") != FORMAT:
      raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    rows, lines = [], 0
    with open(os.path.join(directory, meta.get("manifest", MANIFEST)), encoding="utf-8") as f:
      for line in f:
        lines += 1
        if len(rows) < meta["count"]:
          rows.append(json.loads(line))
    shard_rows = sum(s["rows"] for s in meta["shards"])
    if len(rows) != meta["count"] or shard_rows != meta["count"]:
      raise ValueError(f"{directory}: {MANIFEST} has {len(rows)} rows and the shards {shard_rows}, but {INDEX_JSON} "
                       f"says {meta['count']}: the index is damaged; rebuild it")
    return cls(directory, meta, rows, lines)

  # ------------------------------------------------------------------ reading

  @property
  def count(self) -> int:
    return int(self.meta["count"])

  @property
  def embed_dim(self) -> int:
    return int(self.meta["embed_dim"])

  @property
  def identity(self) -> dict[str, Any]:
    return {k: self.meta[k] for k in IDENTITY_KEYS}

  @property
  def manifest_path(self) -> str:
    return os.path.join(self.directory, self.meta.get("manifest", MANIFEST))

  def paths(self) -> list[str]:
    return [r["path"] for r in self.rows]

  def blocks(self) -> Iterator[np.ndarray]:
    """The embeddings shard by shard (memory-mapped), in row order."""
    for shard in self.meta["shards"]:
      path = os.path.join(self.directory, shard["file"])
      block = np.load(path, mmap_mode="r")
      if block.shape != (shard["rows"], self.embed_dim) or block.dtype != np.float32:
        raise ValueError(f"{path}: float32 {(shard['rows'], self.embed_dim)} expected, got {block.dtype} {block.shape}")
      yield block

  def embeddings(self) -> np.ndarray:
    """All embeddings, float32 [count, embed_dim]."""
    blocks = list(self.blocks())
    return np.concatenate(blocks) if blocks else np.zeros((0, self.embed_dim), np.float32)

  def check_model(self, identity: dict[str, Any]) -> None:
    """Refuses a model other than the one that built the index (another directory, step or config)."""
    mine = self.identity
    if identity["model"] != mine["model"]:
      raise ValueError(f"{self.directory} was built with the model in {mine['model']}, not {identity['model']}: "
                       "embeddings of different models are not comparable; build a new index for that model")
    changed = [f"{k}: {mine[k]} -> {identity[k]}" for k in IDENTITY_KEYS[1:] if identity[k] != mine[k]]
    if changed:
      raise ValueError(f"The model in {mine['model']} has changed since {self.directory} was built ("
                       + "; ".join(changed) + "): its embeddings are not comparable; rebuild the index "
                       "(build --overwrite)")

  # ------------------------------------------------------------------ writing

  def append(self, rows: Sequence[dict[str, Any]], embeddings: np.ndarray) -> None:
    """Commits one shard: embeddings [len(rows), embed_dim] and their manifest rows."""
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.shape != (len(rows), self.embed_dim):
      raise ValueError(f"append: {len(rows)} rows need embeddings [{len(rows)}, {self.embed_dim}], "
                       f"got {embeddings.shape}")
    if not rows:
      return
    name = self._save_shard(embeddings, self._next_number(s["file"] for s in self.meta["shards"]))
    if self._manifest_lines != self.count:  # Drop the leftovers of an interrupted commit first.
      self._rewrite_manifest()
    with open(self.manifest_path, "a", encoding="utf-8") as f:
      f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    self._manifest_lines += len(rows)
    self.rows.extend(dict(r) for r in rows)
    self.meta["shards"].append({"file": name, "rows": len(rows)})
    self.meta["count"] = len(self.rows)
    self._write_meta()

  def rewrite(self, keep: Sequence[int], rows: Sequence[dict[str, Any]] | None = None) -> None:
    """Commits the index reduced to the rows `keep` (increasing row numbers), with `rows` as their manifest rows.

    Shards that lose rows are written anew (under new names), the others kept; then a new manifest, index.json,
    and the replaced files are deleted.
    """
    keep = np.asarray(keep, np.int64).reshape(-1)
    if np.any(np.diff(keep) <= 0) or (len(keep) and (keep[0] < 0 or keep[-1] >= self.count)):
      raise ValueError(f"rewrite: row numbers must increase within [0, {self.count})")
    rows = [dict(r) for r in rows] if rows is not None else [self.rows[i] for i in keep]
    if len(rows) != len(keep):
      raise ValueError(f"rewrite: {len(keep)} rows kept but {len(rows)} manifest rows given")
    shards, replaced, start = [], [], 0
    number = self._next_number(s["file"] for s in self.meta["shards"])
    for shard, block in zip(list(self.meta["shards"]), self.blocks()):
      mine = keep[(keep >= start) & (keep < start + shard["rows"])] - start
      start += shard["rows"]
      if len(mine) == shard["rows"]:
        shards.append(shard)
        continue
      replaced.append(shard["file"])
      if len(mine):
        shards.append({"file": self._save_shard(np.asarray(block[mine]), number), "rows": len(mine)})
        number += 1
    old_manifest = self.meta.get("manifest", MANIFEST)
    manifest = f"manifest_{self._next_number([old_manifest]):05d}.jsonl"
    _write_lines(os.path.join(self.directory, manifest), rows)
    self.rows, self._manifest_lines = rows, len(rows)
    self.meta.update(shards=shards, count=len(rows), manifest=manifest)
    self._write_meta()
    for name in replaced + [old_manifest]:
      try:
        os.remove(os.path.join(self.directory, name))
      except FileNotFoundError:
        pass

  def set_skipped(self, skipped: Sequence[dict[str, str]]) -> None:
    self.meta["skipped"] = list(skipped)
    self._write_meta()

  @staticmethod
  def _next_number(files) -> int:
    """One more than the largest NNNNN in the names `files` (*_NNNNN.*); 0 for none (manifest.jsonl: 0)."""
    numbers = [int(m.group(1)) for m in (re.search(r"_(\d+)\.", f) for f in files) if m]
    return max(numbers, default=-1) + 1

  def _save_shard(self, embeddings: np.ndarray, number: int) -> str:
    name = f"embeddings_{number:05d}.npy"
    tmp = os.path.join(self.directory, name + ".tmp")
    with open(tmp, "wb") as f:
      np.save(f, np.asarray(embeddings, np.float32))
    os.replace(tmp, os.path.join(self.directory, name))
    return name

  def _rewrite_manifest(self) -> None:
    _write_lines(self.manifest_path, self.rows)
    self._manifest_lines = len(self.rows)

  def _write_meta(self) -> None:
    self.meta["updated"] = _now()
    path = os.path.join(self.directory, INDEX_JSON)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      json.dump(self.meta, f, indent=1, ensure_ascii=False)
    os.replace(path + ".tmp", path)


def _write_lines(path: str, rows: Sequence[dict[str, Any]]) -> None:
  """`rows` as JSON lines in `path`, replaced atomically."""
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
  os.replace(path + ".tmp", path)
