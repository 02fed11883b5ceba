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
