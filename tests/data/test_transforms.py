"""ResizeImage: plain resize, and the detail cap (input.detail_res) that keeps tokens but drops detail."""
import numpy as np

from rsvlm_jax.data import transforms as T


def _checker(n=128):
  return ((np.indices((n, n)).sum(0) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)


def test_resize_keeps_a_same_size_image():
  img = _checker()
  ex = T.ResizeImage(128)({"image": img}, np.random.default_rng(0))
  np.testing.assert_array_equal(ex["image"], img)


def test_detail_cap_keeps_the_shape_and_removes_finer_detail():
  img = _checker()
  capped = T.ResizeImage(128, detail_res=64)({"image": img}, np.random.default_rng(0))["image"]
  assert capped.shape == (128, 128, 3) and capped.dtype == np.uint8
  # A one-pixel checkerboard has no structure at 64 px: it comes back as flat mid grey.
  assert abs(float(capped.mean()) - 127.5) < 1.5 and capped.astype(float).std() < 2.0
  coarse = np.kron(_checker(16), np.ones((8, 8, 1), np.uint8))  # 8-px squares survive a 64 px pass.
  kept = T.ResizeImage(128, detail_res=64)({"image": coarse}, np.random.default_rng(0))["image"]
  assert kept.astype(float).std() > 60  # (127.5 before; the 64 px pass only softens the edges.)
