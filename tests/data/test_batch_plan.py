"""Bucket-grouped batch plans: deterministic, homogeneous, exact coverage for eval."""
import numpy as np
import pytest

from rsvlm_jax.data import batch_plan


def test_train_plan_homogeneous_and_deterministic():
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 3, size=200)
  plan = batch_plan.TrainPlan(ids, 3, 16, seed=1)
  again = batch_plan.TrainPlan(ids, 3, 16, seed=1)
  for step in range(3 * plan.batches_per_epoch):
    b, idx = plan(step)
    assert len(idx) == 16 and np.all(ids[idx] == b)
    b2, idx2 = again(step)
    assert b == b2 and np.array_equal(idx, idx2)
  # Within an epoch no example repeats.
  seen = np.concatenate([plan(s)[1] for s in range(plan.batches_per_epoch)])
  assert len(seen) == len(set(seen.tolist()))
  assert len(seen) + plan.dropped_per_epoch == 200
  # Different epochs are shuffled differently.
  assert not np.array_equal(plan(0)[1], plan(plan.batches_per_epoch)[1])


def test_train_plan_needs_a_full_batch():
  with pytest.raises(ValueError, match="batch_size"):
    batch_plan.TrainPlan(np.zeros(5, int), 1, 8, seed=0)


def test_eval_plan_covers_each_example_once():
  ids = np.array([0, 1, 1, 0, 2, 1, 1, 0, 0, 0])
  plan = batch_plan.eval_plan(ids, 3, 4)
  covered = np.concatenate([idx[m] for _, idx, m in plan])
  assert sorted(covered.tolist()) == list(range(10))
  for b, idx, m in plan:
    assert np.all(ids[idx[m]] == b) and np.all(idx[~m] == -1)


def test_process_slice():
  idx = np.arange(8)
  parts = [batch_plan.process_slice(idx, p, 4) for p in range(4)]
  assert np.array_equal(np.concatenate(parts), idx)
  with pytest.raises(ValueError):
    batch_plan.process_slice(np.arange(6), 0, 4)


@pytest.mark.parametrize("counts,batch,multiple", [([143, 99, 58], 32, 1), ([143, 99, 58], 64, 8),
                                                   ([1000, 10, 5], 16, 2), ([0, 50, 50], 8, 1)])
def test_mixed_sizes_are_proportional_multiples(counts, batch, multiple):
  sizes = batch_plan.mixed_sizes(counts, batch, multiple)
  assert sum(sizes) == batch and all(s % multiple == 0 for s in sizes)
  assert all((s > 0) == (c > 0) for s, c in zip(sizes, counts))  # Every non-empty bucket is trained on.
  share = np.asarray(counts) / sum(counts) * batch
  tiny = (share > 0) & (share < multiple)
  if tiny.any():  # Buckets below one unit get exactly one; the others give it up.
    assert all(s == multiple for s in np.asarray(sizes)[tiny])
  else:
    assert np.all(np.abs(np.asarray(sizes) - share) <= multiple)


def test_mixed_sizes_errors():
  with pytest.raises(ValueError, match="batch_size"):
    batch_plan.mixed_sizes([5, 5], 12, 8)
  with pytest.raises(ValueError, match="fewer buckets"):
    batch_plan.mixed_sizes([5, 5, 5], 16, 8)


def test_mixed_plan_holds_every_bucket_and_covers_each_stream():
  rng = np.random.default_rng(0)
  ids = rng.choice(3, size=300, p=[0.5, 0.3, 0.2])
  plan = batch_plan.MixedPlan(ids, 3, 20, seed=1)
  again = batch_plan.MixedPlan(ids, 3, 20, seed=1)
  for step in range(40):
    parts = plan(step)
    assert [b for b, _ in parts] == [0, 1, 2]
    assert [len(idx) for _, idx in parts] == plan.sizes and sum(plan.sizes) == 20
    assert all(np.all(ids[idx] == b) for b, idx in parts)
    assert all(np.array_equal(i1, i2) for (_, i1), (_, i2) in zip(parts, again(step)))
  # Within one epoch of a bucket's stream no example repeats.
  for b, n in enumerate(plan.sizes):
    per_epoch = (ids == b).sum() // n
    seen = np.concatenate([dict(plan(s))[b] for s in range(per_epoch)])
    assert len(seen) == len(set(seen.tolist())) == per_epoch * n


def test_bucket_jitter_swaps_images_across_buckets_at_static_sizes():
  """Jitter reassigns a share of each batch's images to other buckets' slots: same sizes (shapes), same set
  of images as without jitter, deterministic per step, and about the expected share off-bucket."""
  rng = np.random.default_rng(0)
  ids = rng.choice(3, size=600, p=[0.5, 0.3, 0.2])
  plain = batch_plan.MixedPlan(ids, 3, 40, seed=1)
  jit = batch_plan.MixedPlan(ids, 3, 40, seed=1, jitter=0.5)
  off = []
  for step in range(50):
    parts, ref = jit(step), plain(step)
    assert [(b, len(i)) for b, i in parts] == [(b, len(i)) for b, i in ref]
    assert sorted(np.concatenate([i for _, i in parts]).tolist()) == sorted(
        np.concatenate([i for _, i in ref]).tolist())
    assert all(np.array_equal(a, c) for (_, a), (_, c) in zip(parts, jit(step)))
    off.append(np.mean(np.concatenate([ids[i] != b for b, i in parts])))
  # 20 of 40 slots are permuted; a slot keeps its bucket when its new image comes from the same bucket
  # (about 0.5^2 + 0.3^2 + 0.2^2 = 0.38 of them), so ~0.5 * 0.62 = 0.31 of the images move.
  assert 0.2 < np.mean(off) < 0.4
  assert all(np.all(ids[i] == b) for b, i in batch_plan.MixedPlan(ids, 3, 40, seed=1, jitter=0.0)(3))
  with pytest.raises(ValueError, match="dris.bucket_jitter"):
    batch_plan.MixedPlan(ids, 3, 40, seed=1, jitter=1.5)
