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


def _write_png16(path, samples, **kwargs):
  """A 16-bit PNG written by pypng (PIL cannot write 16-bit colour PNGs): samples uint16 [H, W, C]."""
  import png  # pylint: disable=g-import-not-at-top
  h, w, c = samples.shape
  writer = png.Writer(w, h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16, **kwargs)
  with open(path, "wb") as f:
    writer.write(f, samples.reshape(h, w * c).tolist())


def _stretched(band):
  lo, hi = np.percentile(band.astype(np.float64), [2, 98])
  return np.clip(np.round((band - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("channels, interlace", [(3, False), (3, True), (4, False), (2, False)])
def test_sixteen_bit_colour_png_is_read_at_full_depth_and_stretched(tmp_path, channels, interlace):
  """A 48-bit PNG of 12-bit data (and 64-bit RGBA, 32-bit gray+alpha): PIL alone keeps the high byte (0-15)."""
  rng = np.random.default_rng(channels)
  y, x = np.mgrid[0:24, 0:40]
  ramps = [x * 100 + 50, y * 170 + 20, (x + y) * 60 + 400][:max(1, channels - (channels % 2 == 0))]
  samples = np.stack(ramps + [rng.integers(0, 65536, (24, 40))] * (channels % 2 == 0), -1).astype(np.uint16)
  assert samples[..., 0].max() < 4096  # 12-bit data in 16-bit samples.
  path = tmp_path / "deep.png"
  _write_png16(path, samples, interlace=interlace)
  with Image.open(path) as im:  # What a plain PIL read gives: near-black.
    assert np.asarray(im.convert("RGB")).max() <= 16
  out = image_io.read_image(str(path))
  assert out.shape == (24, 40, 3) and out.mean() > 80
  for i in range(3):
    np.testing.assert_array_equal(out[..., i], _stretched(samples[..., min(i, len(ramps) - 1)]))
  import io  # pylint: disable=g-import-not-at-top
  from rsvlm_datasets import caption_formats  # pylint: disable=g-import-not-at-top
  encoded, size = caption_formats.read_image(str(path))  # Dataset builds read the same way.
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encoded))), out)
  assert size == (40, 24)


def _exif(orientation):
  exif = Image.Exif()
  exif[image_io.EXIF_ORIENTATION] = orientation
  return exif


def test_exif_orientation_is_applied_by_tools_and_builds(tmp_path):
  """A camera JPEG tagged Orientation=6 (turned 90 degrees clockwise) comes out upright, in serving and builds."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import ImageOps  # pylint: disable=g-import-not-at-top
  from rsvlm_datasets import caption_formats  # pylint: disable=g-import-not-at-top
  stored = np.full((16, 32, 3), 128, np.uint8)
  stored[:8, :16] = (255, 0, 0)  # Red top-left as stored: top-right once turned clockwise.
  Image.fromarray(stored).save(tmp_path / "cam.jpg", quality=95, exif=_exif(6))
  Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95, exif=_exif(1))
  out = image_io.read_image(str(tmp_path / "cam.jpg"))
  assert out.shape == (32, 16, 3)
  assert out[:14, 10:].mean(axis=(0, 1))[0] > 200 and out[:14, 10:, 1].mean() < 60  # Red at the top right.
  assert out[18:, :].mean(axis=(0, 1)).round().tolist() == [128, 128, 128]
  with Image.open(tmp_path / "cam.jpg") as im:
    np.testing.assert_array_equal(out, np.asarray(ImageOps.exif_transpose(im)))
  encoded, size = caption_formats.read_image(str(tmp_path / "cam.jpg"))  # Builds: stored upright.
  assert size == (16, 32)
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encoded))), out)
  plain = (tmp_path / "plain.jpg").read_bytes()
  assert caption_formats.read_image(str(tmp_path / "plain.jpg")) == (plain, (32, 16))  # Upright: kept as is.
  rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
  for orientation in range(1, 9):  # Every value, as PIL.ImageOps.exif_transpose turns it (PNG: lossless).
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", exif=_exif(orientation))
    with Image.open(buffer) as im:
      want = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(image_io.decode_bytes(buffer.getvalue(), "x.png"), want)


def test_symlink_loops_are_not_followed_and_files_are_listed_once(tmp_path, caplog):
  """`sub/loop -> ..` made 3 files 123 rows; a symlinked file or folder reached twice is listed once."""
  root = tmp_path / "scenes"
  (root / "sub").mkdir(parents=True)
  (tmp_path / "elsewhere").mkdir()
  for name in ("a.png", "sub/b.png", "sub/c.jpg"):
    Image.new("RGB", (4, 4)).save(root / name)
  Image.new("RGB", (4, 4)).save(tmp_path / "elsewhere" / "d.png")
  (root / "sub" / "loop").symlink_to("..")
  (root / "sub" / "loop2").symlink_to("../..")  # Two loops: glob's paths grow exponentially with depth.
  (root / "z_link.png").symlink_to("a.png")
  (root / "more").symlink_to(tmp_path / "elsewhere")  # A symlinked folder that is no loop is followed.
  with caplog.at_level("WARNING"):
    by_glob = image_io.expand_images(str(root / "**" / "*.png"))
  assert by_glob == [str(root / p) for p in ("a.png", "more/d.png", "sub/b.png")]
  # z_link.png, and more/d.png again through sub/loop2/elsewhere/ (loop2/scenes is the second loop).
  assert "dropped 2 path(s) naming a file already listed" in caplog.text
  assert "skipped 2 symlinked folder(s) that loop back" in caplog.text
  by_folder = image_io.expand_images(str(root))
  assert by_folder == [str(root / p) for p in ("a.png", "more/d.png", "sub/b.png", "sub/c.jpg")]
  assert image_io.expand_images(str(root / "sub" / "*.*")) == [str(root / "sub/b.png"), str(root / "sub/c.jpg")]
  assert image_io.expand_images([str(root / "z_link.png"), str(root / "a.png")]) == [str(root / "z_link.png")]
