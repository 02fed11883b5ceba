"""Deterministic batch schedules that group examples by DRIS bucket.

A plan maps a global step to (bucket, example indices). It is a pure function of (bucket ids, batch
size, seed), so any step can be recomputed: resuming at step k is exact, and every process derives
the same schedule and takes its own slice of each global batch.
"""
from __future__ import annotations

import functools

import numpy as np
from absl import logging


class TrainPlan:
  """Epoch-wise shuffled, bucket-homogeneous batches of `global_batch` examples (remainders dropped, counted)."""

  def __init__(self, bucket_ids: np.ndarray, num_buckets: int, global_batch: int, seed: int):
    self.bucket_ids = np.asarray(bucket_ids, np.int32)
    self.num_buckets = num_buckets
    self.global_batch = global_batch
    self.seed = seed
    counts = np.bincount(self.bucket_ids, minlength=num_buckets)
    self.batches_per_epoch = int(sum(c // global_batch for c in counts))
    self.dropped_per_epoch = int(sum(c % global_batch for c in counts))
    if self.batches_per_epoch == 0:
      raise ValueError(f"No bucket holds a full global batch of {global_batch} (bucket sizes {counts.tolist()}); "
                       "lower input.batch_size or use fewer buckets")
    logging.info("TrainPlan: %d batches/epoch, bucket sizes %s, %d examples/epoch dropped as bucket "
                 "remainders (a different subset each epoch)", self.batches_per_epoch, counts.tolist(),
                 self.dropped_per_epoch)

  @functools.lru_cache(maxsize=2)
  def epoch(self, epoch: int) -> tuple[tuple[int, np.ndarray], ...]:
    rng = np.random.default_rng([self.seed, epoch])
    perm = rng.permutation(len(self.bucket_ids))
    batches = []
    for b in range(self.num_buckets):
      idx = perm[self.bucket_ids[perm] == b]
      for i in range(len(idx) // self.global_batch):
        batches.append((b, idx[i * self.global_batch:(i + 1) * self.global_batch]))
    order = rng.permutation(len(batches))
    return tuple(batches[i] for i in order)

  def __call__(self, step: int) -> tuple[int, np.ndarray]:
    """Global step -> (bucket, global example indices)."""
    epoch, within = divmod(int(step), self.batches_per_epoch)
    return self.epoch(epoch)[within]


def mixed_sizes(counts, global_batch: int, multiple: int = 1) -> list[int]:
  """Static examples per bucket in every mixed batch: proportional to `counts`, each a multiple of `multiple`.

  Largest-remainder rounding in units of `multiple` (so each bucket's share splits evenly over the data
  shards); every non-empty bucket gets at least one unit so no bucket goes untrained.
  """
  counts = np.asarray(counts, np.float64)
  if global_batch % multiple:
    raise ValueError(f"Global batch {global_batch} (input.batch_size) is not divisible by {multiple} data shards")
  units = global_batch // multiple
  nonempty = counts > 0
  if nonempty.sum() > units:
    raise ValueError(f"A mixed batch of {global_batch} cannot hold {int(nonempty.sum())} buckets in units of "
                     f"{multiple}; raise input.batch_size or use fewer buckets")
  exact = units * counts / counts.sum()
  alloc = np.where(nonempty, np.maximum(np.floor(exact), 1), 0).astype(np.int64)
  while alloc.sum() > units:  # The at-least-one rule overshot: take from the largest shares.
    alloc[np.argmax(np.where(alloc > 1, alloc - exact, -np.inf))] -= 1
  order = np.argsort(-(exact - alloc), kind="stable")
  for i in order[:units - alloc.sum()]:
    alloc[i] += 1
  return (alloc * multiple).tolist()


class MixedPlan:
  """Every global batch holds a static number of examples of EVERY bucket (one sub-batch per bucket).

  The batch then has the content mix of the data (not only sea or only ports), and the contrastive
  negatives span all complexities, while each sub-batch keeps one static shape: the train step compiles
  once in all. Each bucket is its own shuffled stream: bucket b's epoch e is a permutation seeded by
  (seed, b, e), cut into sub-batches of sizes[b] (its remainder dropped, a different subset each epoch).

  `jitter` in [0, 1]: in every step, round(jitter x batch) randomly chosen slots swap their images among
  themselves (a permutation seeded by (seed, step)), so an image is sometimes trained at another bucket's
  grid. Sub-batch sizes, hence shapes and training tokens, are unchanged; each grid then also sees
  content from outside its score range (without it the largest grid only ever sees dense scenes).
  """

  def __init__(self, bucket_ids: np.ndarray, num_buckets: int, global_batch: int, seed: int, multiple: int = 1,
               jitter: float = 0.0):
    self.bucket_ids = np.asarray(bucket_ids, np.int32)
    self.num_buckets, self.global_batch, self.seed = num_buckets, global_batch, seed
    if not 0.0 <= jitter <= 1.0:
      raise ValueError(f"Bucket jitter must be in [0, 1] (config key dris.bucket_jitter), got {jitter}")
    self.jitter = float(jitter)
    counts = np.bincount(self.bucket_ids, minlength=num_buckets)
    self.sizes = mixed_sizes(counts, global_batch, multiple)
    self._members = [np.flatnonzero(self.bucket_ids == b) for b in range(num_buckets)]
    self._per_epoch = [len(m) // n if n else 0 for m, n in zip(self._members, self.sizes)]
    for b, (n, k) in enumerate(zip(self.sizes, self._per_epoch)):
      if n and not k:
        raise ValueError(f"Bucket {b} holds {counts[b]} examples, fewer than its share {n} of a mixed batch")
    dropped = [int(len(m) - k * n) for m, n, k in zip(self._members, self.sizes, self._per_epoch)]
    logging.info("MixedPlan: examples per bucket in every batch %s (bucket sizes %s); per pass over each "
                 "bucket's stream %s examples are dropped as remainders (a different subset each pass)",
                 self.sizes, counts.tolist(), dropped)

  @functools.lru_cache(maxsize=8)
  def _epoch(self, bucket: int, epoch: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, bucket, epoch])
    return self._members[bucket][rng.permutation(len(self._members[bucket]))]

  def __call__(self, step: int) -> list[tuple[int, np.ndarray]]:
    """Global step -> [(bucket, global example indices)] for every bucket with a non-zero share."""
    out = []
    for b, n in enumerate(self.sizes):
      if n:
        epoch, within = divmod(int(step), self._per_epoch[b])
        out.append((b, self._epoch(b, epoch)[within * n:(within + 1) * n]))
    swaps = int(round(self.jitter * self.global_batch))
    if swaps > 1:
      flat = np.concatenate([idx for _, idx in out])
      rng = np.random.default_rng([self.seed, self.num_buckets, 1 << 20, int(step)])  # Apart from the streams.
      slots = rng.choice(len(flat), swaps, replace=False)
      flat[slots] = flat[rng.permutation(slots)]
      cuts = np.cumsum([len(idx) for _, idx in out])[:-1]
      out = [(b, part) for (b, _), part in zip(out, np.split(flat, cuts))]
    return out


def eval_plan(bucket_ids: np.ndarray, num_buckets: int, global_batch: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
  """Every example exactly once: per bucket, in index order, last batch padded (index -1, mask False).

  Returns [(bucket, indices [global_batch], mask [global_batch])]; the same on every process.
  """
  plan = []
  for b in range(num_buckets):
    idx = np.flatnonzero(np.asarray(bucket_ids) == b)
    for i in range(0, len(idx), global_batch):
      chunk = idx[i:i + global_batch]
      pad = global_batch - len(chunk)
      plan.append((b, np.concatenate([chunk, -np.ones(pad, np.int64)]),
                   np.concatenate([np.ones(len(chunk), bool), np.zeros(pad, bool)])))
  return plan


def process_slice(indices: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  """This process's contiguous share of a global batch."""
  if len(indices) % process_count:
    raise ValueError(f"Global batch {len(indices)} is not divisible by {process_count} processes")
  n = len(indices) // process_count
  return indices[process_index * n:(process_index + 1) * n]
