"""Exact top-k inner-product search over many embeddings.

`ExactSearch` keeps the rows on the accelerator in fixed-size chunks (the last one padded and masked, so one
compiled program serves every chunk); a query batch runs a jit'd matmul + `lax.top_k` per chunk and merges each
chunk's top k into the running best k. Scores are computed at float32 HIGHEST precision (no TF32 on GPUs), so the
result is the exact top k, equal to faiss IndexFlatIP's up to float32 rounding of near-ties.
`FaissSearch` wraps faiss-cpu's IndexFlatIP behind the same interface.
"""
from __future__ import annotations

import functools
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

CHUNK_ROWS = 65536
FAISS_PIN = "faiss-cpu==1.15.1"


@functools.partial(jax.jit, static_argnames=("k",))
def _merge_chunk(best_s, best_i, queries, chunk, offset, n_valid, *, k: int):
  """The best k of (running best, this chunk's rows [offset, offset + n_valid))."""
  scores = jnp.matmul(queries, chunk.T, precision=jax.lax.Precision.HIGHEST)
  scores = jnp.where(jnp.arange(chunk.shape[0])[None, :] < n_valid, scores, -jnp.inf)
  chunk_s, chunk_i = jax.lax.top_k(scores, min(k, chunk.shape[0]))
  all_s = jnp.concatenate([best_s, chunk_s], axis=1)
  all_i = jnp.concatenate([best_i, chunk_i + offset], axis=1)
  top_s, pos = jax.lax.top_k(all_s, k)
  return top_s, jnp.take_along_axis(all_i, pos, axis=1)


class ExactSearch:
  """Exact top-k by inner product over rows given as one [N, E] array or as consecutive [n, E] blocks."""

  def __init__(self, rows: np.ndarray | Iterable[np.ndarray], dim: int | None = None, *,
               chunk_rows: int = CHUNK_ROWS):
    blocks = [rows] if isinstance(rows, np.ndarray) else rows
    self.chunks: list[tuple[jax.Array, int, int]] = []  # (padded chunk on device, rows used, offset)
    self.dim, self.count = dim, 0
    size = 0  # One padded shape for all chunks: the first one's (only the last chunk can be shorter).
    for block in _rechunk(blocks, chunk_rows):
      size = size or len(block)
      if block.ndim != 2 or block.shape[1] != (self.dim or block.shape[1]):
        raise ValueError(f"Embeddings must be [n, {self.dim or 'E'}], got {block.shape}")
      self.dim = self.dim or block.shape[1]
      n = len(block)
      if n < size:  # Only the last chunk: padded with zero rows, masked in the search.
        block = np.concatenate([block, np.zeros((size - n, self.dim), np.float32)])
      self.chunks.append((jax.device_put(np.ascontiguousarray(block)), n, self.count))
      self.count += n
    if self.dim is None:
      raise ValueError("ExactSearch needs at least one row or an explicit dim")

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 [Q, k'], row ids int64 [Q, k']) best first, k' = min(k, number of rows)."""
    queries = np.asarray(queries, np.float32)
    if queries.ndim != 2 or queries.shape[1] != self.dim:
      raise ValueError(f"Queries must be [Q, {self.dim}], got {queries.shape}")
    k = min(int(k), self.count)
    if k <= 0:
      return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    q = jnp.asarray(queries)
    best_s = jnp.full((len(queries), k), -jnp.inf, jnp.float32)
    best_i = jnp.full((len(queries), k), -1, jnp.int32)
    for chunk, n_valid, offset in self.chunks:
      best_s, best_i = _merge_chunk(best_s, best_i, q, chunk, np.int32(offset), np.int32(n_valid), k=k)
    return np.asarray(best_s), np.asarray(best_i).astype(np.int64)


def _rechunk(blocks: Iterable[np.ndarray], rows: int) -> Iterable[np.ndarray]:
  """Consecutive blocks of any sizes -> blocks of exactly `rows` rows (the last one may be shorter)."""
  buf, have = [], 0
  for block in blocks:
    block = np.asarray(block, np.float32)
    while len(block):
      take = block[:rows - have]
      buf.append(take)
      have += len(take)
      block = block[len(take):]
      if have == rows:
        yield np.concatenate(buf) if len(buf) > 1 else buf[0]
        buf, have = [], 0
  if have:
    yield np.concatenate(buf) if len(buf) > 1 else buf[0]


def import_faiss():
  """The faiss module, or an ImportError that says what to install."""
  try:
    import faiss  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"--faiss needs faiss, which is not installed: pip install {FAISS_PIN} (without --faiss the "
                      "exact JAX search returns the same hits)") from e
  return faiss


class FaissSearch:
  """faiss IndexFlatIP (exact inner product on the CPU) with ExactSearch's interface."""

  def __init__(self, rows: np.ndarray | Iterable[np.ndarray], dim: int | None = None):
    faiss = import_faiss()
    blocks = [rows] if isinstance(rows, np.ndarray) else rows
    self.index, self.dim = None, dim
    if dim is not None:
      self.index = faiss.IndexFlatIP(dim)
    for block in blocks:
      block = np.ascontiguousarray(block, np.float32)
      if self.index is None:
        self.dim = block.shape[1]
        self.index = faiss.IndexFlatIP(self.dim)
      self.index.add(block)
    if self.index is None:
      raise ValueError("FaissSearch needs at least one row or an explicit dim")

  @property
  def count(self) -> int:
    return int(self.index.ntotal)

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(int(k), self.count)
    if k <= 0:
      return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    scores, ids = self.index.search(np.ascontiguousarray(queries, np.float32), k)
    return scores, ids.astype(np.int64)
