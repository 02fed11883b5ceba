"""The converter's output directory: refused unless replaceable, written aside, published by one rename.

A conversion writes into `OUT.partial-PID` (with an owner file naming host, pid and process start) and renames
it to OUT only when complete and synced to disk, so OUT is either absent, the previous model or the new one,
never half written. `--overwrite` replaces OUT only when OUT is this converter's own output (its marker files,
as `tools.index build` refuses a folder that is not an index). A killed conversion leaves its partial
directory (GBs for ViT-L/H); the next conversion to the same OUT removes those whose process is dead.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket

from absl import logging

from rsvlm_jax.runtime import cli
from rsvlm_jax.runtime import run_lock

CONVERSION_JSON = "conversion.json"  # Written last: the marker of a complete conversion.
CONFIG_JSON = "config.json"
OWNER_JSON = ".convert_owner.json"  # Inside OUT.partial-PID / OUT.old-PID: who is writing it.


def is_converted_model(path: str) -> bool:
  """True when `path` holds this converter's output: conversion.json and a config.json it wrote."""
  try:
    with open(os.path.join(path, CONFIG_JSON), encoding="utf-8") as f:
      config = json.load(f)
  except (OSError, ValueError):
    return False
  return os.path.isfile(os.path.join(path, CONVERSION_JSON)) and isinstance(config, dict) and (
      "converted_from" in config)


def _describe(path: str, entries: list[str]) -> str:
  shown = ", ".join(sorted(entries)[:6]) + (f", ... ({len(entries)} entries)" if len(entries) > 6 else "")
  return f"it holds {shown}"


def check_out(out: str, overwrite: bool) -> None:
  """Refuses `--out` before any slow work: an existing file, a folder that is not a converted model (even
  with --overwrite), an existing model without --overwrite, or a place this process cannot write."""
  if os.path.lexists(out) and not os.path.isdir(out):
    raise cli.UserError(f"--out {out} is an existing file, not a model directory; refusing to replace it"
                        + (" even with --overwrite" if overwrite else ""))
  entries = os.listdir(out) if os.path.isdir(out) else []
  if entries and not overwrite:
    raise FileExistsError(f"--out {out} already exists; pass --overwrite to replace it")
  if entries and not is_converted_model(out):
    raise cli.UserError(f"--out {out} is not a model written by convert_open_clip (no {CONVERSION_JSON} and "
                        f"{CONFIG_JSON} of a conversion; {_describe(out, entries)}); refusing to replace it even "
                        "with --overwrite: pick another --out or remove it yourself")
  parent = os.path.dirname(out)
  while not os.path.lexists(parent):  # OUT's missing parent folders are created.
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise cli.UserError(f"--out {out}: {parent} is a file, not a folder")
  cli.check_writable_dir(parent, f"--out {out}")


# ------------------------------------------------------------------ partial directories of killed runs


def _owner(path: str) -> dict:
  try:
    with open(os.path.join(path, OWNER_JSON), encoding="utf-8") as f:
      owner = json.load(f)
    return owner if isinstance(owner, dict) else {}
  except (OSError, ValueError):
    return {}


def write_owner(path: str) -> None:
  """Marks `path` as being written by this process on this host."""
  with open(os.path.join(path, OWNER_JSON), "w", encoding="utf-8") as f:
    json.dump({"host": socket.gethostname(), "pid": os.getpid(), "start": run_lock.proc_start(os.getpid())}, f)


def _writer_alive(pid: int, owner: dict) -> bool:
  """Whether the process that wrote a partial directory may still run (unknown counts as alive)."""
  if owner.get("host") not in (None, socket.gethostname()):
    return True  # Another host's pid means nothing here.
  if pid == os.getpid():
    return False  # Ours from an earlier call in this process (or a reused pid): not being written now.
  return run_lock.pid_alive(pid, owner.get("start"))  # A reused pid (another start time) is dead.


def _size(path: str) -> int:
  total = 0
  for root, _, files in os.walk(path):
    for name in files:
      try:
        total += os.lstat(os.path.join(root, name)).st_size
      except OSError:
        pass
  return total


def remove_stale(out: str) -> list[str]:
  """Removes `OUT.partial-PID` / `OUT.old-PID` left by killed conversions (dead pid on this host), logging
  each; an `OUT.old-PID` (the previous model, moved aside just before the new one moved in) is put back when
  OUT is missing. Returns the removed paths."""
  parent, base = os.path.split(out)
  pattern = re.compile(re.escape(base) + r"\.(partial|old)-(\d+)$")
  removed = []
  for name in sorted(os.listdir(parent) if os.path.isdir(parent) else []):
    m = pattern.match(name)
    path = os.path.join(parent, name)
    if not m or not os.path.isdir(path) or os.path.islink(path):
      continue
    owner = _owner(path)
    if _writer_alive(int(m.group(2)), owner):
      logging.info("Left %s alone: its conversion (pid %s%s) may still be running", path, m.group(2),
                   f" on {owner['host']}" if owner.get("host") else "")
      continue
    try:
      if m.group(1) == "old" and not os.path.lexists(out):
        if owner:
          os.remove(os.path.join(path, OWNER_JSON))
        os.rename(path, out)
        logging.warning("Put back %s as %s: a conversion (pid %s) was killed while replacing it", path, out,
                        m.group(2))
        continue
      size = _size(path)
      shutil.rmtree(path)
    except OSError as e:
      logging.warning("Could not remove %s, left by a killed conversion (pid %s): %s", path, m.group(2), e)
      continue
    removed.append(path)
    logging.warning("Removed %s (%.1f MB) left by a killed conversion (pid %s)", path, size / 2**20, m.group(2))
  return removed


# ------------------------------------------------------------------ publishing


def _fsync_tree(path: str) -> None:
  """Flushes every file and folder under `path` to disk, so a crash after the rename finds them whole."""
  for root, _, files in os.walk(path):
    for name in files:
      fd = os.open(os.path.join(root, name), os.O_RDONLY)
      try:
        os.fsync(fd)
      finally:
        os.close(fd)
    _fsync_dir(root)


def _fsync_dir(path: str) -> None:
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass  # Some filesystems do not sync folders.
  finally:
    os.close(fd)


def publish(tmp: str, out: str, overwrite: bool) -> None:
  """Moves the complete `tmp` to `out` with one rename (an existing converted model is moved aside first,
  then deleted). OUT is re-checked: another conversion may have finished there meanwhile."""
  os.remove(os.path.join(tmp, OWNER_JSON))
  _fsync_tree(tmp)
  if os.path.isdir(out) and os.listdir(out):
    check_out(out, overwrite)
    old = f"{out}.old-{os.getpid()}"
    write_owner(out)  # So that a kill between the two renames lets the next run put the old model back.
    os.rename(out, old)
    os.rename(tmp, out)
    _fsync_dir(os.path.dirname(out))
    shutil.rmtree(old)
  else:
    os.rename(tmp, out)  # Atomic; replaces an empty folder.
    _fsync_dir(os.path.dirname(out))
