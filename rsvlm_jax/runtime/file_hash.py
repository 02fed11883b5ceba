"""The sha256 of a file's bytes, read in blocks (index rows, conversion records)."""
from __future__ import annotations

import hashlib


def file_sha256(path: str) -> str:
  """The sha256 of the file's bytes (hex)."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()
