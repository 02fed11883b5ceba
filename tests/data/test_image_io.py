"""image_io: every format, bit depth and band count to uint8 RGB by the documented rules; size limits."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rsvlm_jax.data import image_io
from tests.tools.conftest import write_geotiff


def test_sixteen_bit_and_float_data_are_stretched_not_clipped(tmp_path):
  import tifffile  # pylint: disable=g-import-not-at-top
  ramp = np.linspace(1000, 41000, 64 * 64).reshape(64, 64)
  Image.fromarray(ramp.astype(np.uint16)).save(tmp_path / "p16.png")
  out = image_io.read_image(str(tmp_path / "p16.png"))
  # A plain convert("RGB") saturates everything above 255; the stretch keeps the ramp (2-98 percentiles).
  assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
  assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and len(np.unique(out[..., 0])) > 200
  lo, hi = np.percentile(ramp.astype(np.uint16), [2, 98])  # The documented rule, by hand.
  expected = np.clip(np.round((ramp.astype(np.uint16) - lo) / (hi - lo) * 255), 0, 255)
  np.testing.assert_array_equal(out[..., 0], expected)
  import io  # pylint: disable=g-import-not-at-top
  from rsvlm_datasets import caption_formats  # pylint: disable=g-import-not-at-top
  encoded, size = caption_formats.read_image(str(tmp_path / "p16.png"))  # Dataset builds read the same way.
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encoded))), out)
  assert size == (64, 64)
  floats = (ramp / 41000).astype(np.float32)
  floats[0, 0] = np.nan  # No-data: 0, and ignored by the percentiles.
  tifffile.imwrite(tmp_path / "f.tif", floats)
  lo, hi = np.percentile(floats[1:].astype(np.float64), [2, 98])
  got = image_io.read_image(str(tmp_path / "f.tif"))[..., 1]
  want = int(np.clip(round((floats[-1, 0] - lo) / (hi - lo) * 255), 0, 255))
  assert got[0, 0] == 0 and abs(int(got[-1, 0]) - want) <= 1


def test_bands_of_a_geotiff(tmp_path):
  data = np.stack([np.full((8, 8), v, np.uint16) for v in (100, 200, 300, 400)], -1)
  data[0, 0] = (0, 0, 0, 0)  # Some range inside each band.
  write_geotiff(str(tmp_path / "g.tif"), data)
  first3 = image_io.read_image(str(tmp_path / "g.tif"))
  picked = image_io.read_image(str(tmp_path / "g.tif"), image_io.ReadOptions(bands=(4, 3, 2)))
  gray = image_io.read_image(str(tmp_path / "g.tif"), image_io.ReadOptions(bands=(4,)))
  assert first3.shape == picked.shape == gray.shape == (8, 8, 3)
  np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
  assert image_io.parse_bands("4,3,2") == (4, 3, 2) and image_io.parse_bands("") is None
  with pytest.raises(ValueError, match="--bands expects"):
    image_io.parse_bands("4,3")
  with pytest.raises(image_io.ImageReadError, match="asks for band 9 of an image with 4"):
    image_io.read_image(str(tmp_path / "g.tif"), image_io.ReadOptions(bands=(9, 3, 2)))


def test_modes_palette_alpha_gray(tmp_path):
  rng = np.random.default_rng(0)
  rgba = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
  np.testing.assert_array_equal(image_io.read_image(str(tmp_path / "a.png")), rgba[..., :3])
  Image.fromarray(rgba[..., 0], "L").save(tmp_path / "l.png")
  assert image_io.read_image(str(tmp_path / "l.png")).shape == (10, 12, 3)
  Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "p.png")
  assert image_io.read_image(str(tmp_path / "p.png")).shape == (10, 12, 3)


def test_size_limits(tmp_path):
  big = Image.new("RGB", (3000, 2000), (10, 20, 30))
  big.save(tmp_path / "big.jpg")
  big.save(tmp_path / "big.png")
  small = image_io.ReadOptions(max_pixels=1_000_000, max_side=1000)
  out = image_io.read_image(str(tmp_path / "big.jpg"), small)  # JPEG: decoded at reduced scale.
  assert out.shape == (667, 1000, 3)
  with pytest.raises(image_io.ImageReadError, match=r"big.png: 3000x2000 px \(6 MP\) exceeds max_pixels=1 MP"):
    image_io.read_image(str(tmp_path / "big.png"), small)
  assert image_io.read_image(str(tmp_path / "big.png"), image_io.ReadOptions(max_side=1500)).shape == (1000, 1500, 3)


def test_a_jpeg_claiming_30000_pixels_a_side_is_a_named_error(tmp_path):
  """The header says 30000x30000 (a decompression bomb); it is refused before decoding, naming the file."""
  import io  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.new("RGB", (16, 16)).save(buffer, format="JPEG")
  data = bytearray(buffer.getvalue())
  sof = data.index(b"\xff\xc0")
  data[sof + 5:sof + 9] = (30000).to_bytes(2, "big") + (30000).to_bytes(2, "big")
  (tmp_path / "bomb.jpg").write_bytes(bytes(data))
  # Tools decode a JPEG at up to 1/8 scale when that fits max_pixels (here 14 MP of 100); with a lower limit
  # it is refused from its header, before any decoding.
  with pytest.raises(image_io.ImageReadError, match=r"bomb.jpg: 30000x30000 px \(900 MP\) exceeds max_pixels=10 MP"):
    image_io.read_image(str(tmp_path / "bomb.jpg"), image_io.ReadOptions(max_pixels=10_000_000))
  from rsvlm_datasets import caption_formats  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=r"bomb.jpg: 30000x30000 px"):  # A build keeps native sizes: a bad record.
    caption_formats.read_image(str(tmp_path / "bomb.jpg"))
  with pytest.raises(image_io.ImageReadError, match="not found"):
    image_io.read_image(str(tmp_path / "missing.png"))
