"""Position embeddings: resampling to buckets and cropping to tiles."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rsvlm_jax.models import posemb


def _pe(g=8, d=4, seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), (1, g, g, d))


def test_resample_to_its_own_grid_is_the_identity():
  pe = _pe()
  np.testing.assert_array_equal(posemb.resample_posemb(pe, (8, 8)), pe)


def test_crop_of_the_full_box_at_own_grid_is_the_identity():
  pe = _pe()
  out = posemb.crop_posemb(pe, jnp.array([0.0, 0.0, 1.0, 1.0]), (8, 8))
  np.testing.assert_allclose(out, pe, atol=1e-5)


def test_crop_of_a_quadrant_upsampled_matches_the_quadrant():
  pe = _pe()
  out = posemb.crop_posemb(pe, jnp.array([0.5, 0.0, 1.0, 0.5]), (4, 4))
  np.testing.assert_allclose(out, pe[:, 4:, :4], atol=1e-5)  # cell centres coincide with the quadrant's.


def test_linear_field_is_resampled_exactly():
  # A posemb linear in (row, col) must stay linear on any grid (bilinear interpolation, upsampling).
  g = 4
  yy, xx = np.meshgrid((np.arange(g) + 0.5) / g, (np.arange(g) + 0.5) / g, indexing="ij")
  pe = jnp.asarray(np.stack([yy, xx], -1)[None], jnp.float32)
  out = posemb.crop_posemb(pe, jnp.array([0.25, 0.25, 0.75, 0.75]), (4, 4))
  ys = 0.25 + (np.arange(4) + 0.5) / 8
  np.testing.assert_allclose(out[0, :, 0, 0], ys, atol=1e-5)
  np.testing.assert_allclose(out[0, 0, :, 1], ys, atol=1e-5)


def test_learned_posemb_shapes():
  mod = posemb.LearnedPosEmb(grid=(8, 8), width=4)
  params = mod.init(jax.random.PRNGKey(0), (8, 8))
  assert mod.apply(params, (12, 12)).shape == (1, 144, 4)
  assert mod.apply(params, (4, 4), jnp.array([0.0, 0.0, 0.5, 0.5])).shape == (1, 16, 4)
