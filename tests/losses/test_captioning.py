"""Captioning cross-entropy against a NumPy reference; the registry's errors."""
import jax.numpy as jnp
import numpy as np
import pytest

from rsvlm_jax.losses import captioning
from rsvlm_jax.losses import registry


def _numpy_ce(logits, targets):
  total, n = 0.0, 0
  for b in range(targets.shape[0]):
    for t in range(targets.shape[1]):
      if targets[b, t] == 0:
        continue
      row = logits[b, t].astype(np.float64)
      lse = np.log(np.exp(row - row.max()).sum()) + row.max()
      total += lse - row[targets[b, t]]
      n += 1
  return total / n


def test_token_cross_entropy_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, 7)).astype(np.float32)
  targets = np.array([[4, 5, 3, 0, 0], [6, 3, 0, 0, 0], [1, 2, 4, 5, 3]], np.int32)
  loss, acc = captioning.token_cross_entropy(jnp.asarray(logits), jnp.asarray(targets))
  np.testing.assert_allclose(float(loss), _numpy_ce(logits, targets), rtol=1e-6)
  mask = targets != 0
  np.testing.assert_allclose(float(acc), ((logits.argmax(-1) == targets) & mask).sum() / mask.sum())


def test_registry_errors_name_the_key():
  with pytest.raises(KeyError, match="losses.nope"):
    registry.get("nope")
  with pytest.raises(ValueError, match="switches every loss off"):
    registry.active({"captioning": {"weight": 0.0}})
  assert set(registry.active({"captioning": {"weight": 1.0}, "global_alignment": {"weight": 0}})) == {"captioning"}
