"""Position embeddings: resampling to buckets."""
from __future__ import annotations

import jax
import numpy as np

from rsvlm_jax.models import posemb


def _pe(g=8, d=4, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), (1, g, g, d))


def test_resample_to_its_own_grid_is_the_identity():
  pe = _pe()
  np.testing.assert_array_equal(posemb.resample_posemb(pe, (8, 8)), pe)


def test_learned_posemb_shapes():
  mod = posemb.LearnedPosEmb(grid=(8, 8), width=4)
  params = mod.init(jax.random.PRNGKey(0), (8, 8))
  assert mod.apply(params, (12, 12)).shape == (1, 144, 4)
