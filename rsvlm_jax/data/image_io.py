"""Reading images for every tool: JPEG, PNG, TIFF and GeoTIFF; 8/16-bit integer and float; 1, 3, 4 or more bands.

What comes out is always uint8 [H, W, 3] RGB, by these documented rules (never silent clipping):
- 8-bit data is used as is. Palette, grayscale (replicated to three channels), gray+alpha, RGBA and CMYK
  images convert to RGB; alpha is dropped.
- Data of more than 8 bits (uint16, int, float) is stretched per band between the `stretch` percentiles
  (default 2 and 98) of its finite values: those map to 0 and 255, the tails beyond them saturate (the usual
  display stretch of remote-sensing viewers); NaN/inf become 0. `stretch=(0, 100)` is a min-max stretch.
- Bands: `bands` picks them by 1-based number (GDAL's convention), e.g. (4, 3, 2) for a false-colour or a
  B,G,R,NIR product; one band is replicated to gray; without `bands`, an image of 4 or more bands that is not
  RGBA/CMYK uses its first three (logged once per file), and one of 2 bands uses the first.
- Size: the header is read first. A scene above `max_pixels` (default 100 MP) is refused with an error
  naming the file and its size, unless it can be decoded at reduced scale: JPEG decodes at 1/2, 1/4 or 1/8
  scale and TIFF pyramids (GeoTIFF overviews) provide smaller levels; then the largest reduction that keeps
  the longer side >= `max_side` is read. Other scenes larger than `max_side` (default 4096 px a side) are
  decoded whole and resized (antialiased) so the longer side is `max_side`: every model input is far smaller.
"""
from __future__ import annotations

import dataclasses
import io
import os
from typing import Sequence

import numpy as np
from absl import logging
from PIL import Image

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")  # What folder scans pick up.


class ImageReadError(ValueError):
  """An image file that cannot be read; the message names the file."""


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  bands: tuple[int, ...] | None = None  # 1-based band numbers: 3 for RGB, or 1 (replicated to gray).
  stretch: tuple[float, float] = (2.0, 98.0)  # Percentiles for data of more than 8 bits.
  max_pixels: int = 100_000_000
  max_side: int = 4096


def parse_bands(text: str) -> tuple[int, ...] | None:
  """'4,3,2' -> (4, 3, 2); '' -> None. Errors name the flag value."""
  if not text:
    return None
  try:
    bands = tuple(int(b) for b in text.split(","))
  except ValueError as e:
    raise ValueError(f"--bands expects comma-separated 1-based band numbers, e.g. 4,3,2; got {text!r}") from e
  if len(bands) not in (1, 3) or min(bands) < 1:
    raise ValueError(f"--bands expects 1 or 3 band numbers counted from 1, got {text!r}")
  return bands


def stretch_to_uint8(band: np.ndarray, lo_pct: float, hi_pct: float) -> np.ndarray:
  """One band of any numeric dtype -> uint8 by a percentile stretch of its finite values."""
  x = band.astype(np.float64)
  finite = np.isfinite(x)
  if not finite.any():
    return np.zeros(band.shape, np.uint8)
  lo, hi = np.percentile(x[finite], [lo_pct, hi_pct])
  if hi <= lo:
    hi = lo + 1.0
  y = np.where(finite, (x - lo) / (hi - lo) * 255.0, 0.0)
  return np.clip(np.round(y), 0, 255).astype(np.uint8)


def to_rgb(array: np.ndarray, options: ReadOptions = ReadOptions(), *, source: str = "image",
           alpha: bool = False) -> np.ndarray:
  """[H, W] or [H, W, C] of any numeric dtype -> uint8 [H, W, 3] by the module's rules."""
  if array.ndim == 2:
    array = array[..., None]
  if array.ndim != 3:
    raise ImageReadError(f"{source}: expected an image of 2 or 3 dimensions, got shape {array.shape}")
  c = array.shape[-1]
  if options.bands:
    if max(options.bands) > c:
      raise ImageReadError(f"{source}: --bands {','.join(map(str, options.bands))} asks for band "
                           f"{max(options.bands)} of an image with {c}")
    array = array[..., [b - 1 for b in options.bands]]
  elif c == 2 or (c == 4 and alpha):
    array = array[..., :c - 1]  # Gray+alpha or RGBA: drop alpha.
  elif c >= 4:
    logging.info("%s has %d bands; using the first three as RGB (pass --bands to choose)", source, c)
    array = array[..., :3]
  if array.dtype != np.uint8:
    array = np.stack([stretch_to_uint8(array[..., i], *options.stretch) for i in range(array.shape[-1])], -1)
  if array.shape[-1] == 1:
    array = np.repeat(array, 3, axis=-1)
  return np.ascontiguousarray(array)


def _is_tiff(fh) -> bool:
  head = fh.read(4)
  fh.seek(0)
  return head in TIFF_MAGIC


def _limit(path: str, w: int, h: int, options: ReadOptions, reducible: bool) -> None:
  if w * h > options.max_pixels and not reducible:
    raise ImageReadError(f"{path}: {w}x{h} px ({w * h / 1e6:.0f} MP) exceeds max_pixels="
                         f"{options.max_pixels / 1e6:.0f} MP and cannot be decoded at reduced scale; tile or "
                         "downsample it first, or raise --max_pixels if the memory allows")


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
  h, w = image.shape[:2]
  if max(h, w) <= max_side:
    return image
  scale = max_side / max(h, w)
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR, reducing_gap=3.0))


def _read_tiff(fh, path: str, options: ReadOptions) -> tuple[np.ndarray, bool]:
  import tifffile  # pylint: disable=g-import-not-at-top
  with tifffile.TiffFile(fh) as tif:
    series = tif.series[0]
    levels = list(getattr(series, "levels", None) or [series])
    shape = levels[0].shape
    axes = levels[0].axes
    h, w = _hw(shape, axes)
    chosen = levels[0]
    for level in levels[1:]:  # Overviews, largest first: take the smallest one still >= max_side.
      lh, lw = _hw(level.shape, level.axes)
      if max(lh, lw) >= options.max_side:
        chosen = level
    ch, cw = _hw(chosen.shape, chosen.axes)
    _limit(path, cw, ch, options, reducible=False)
    if (ch, cw) != (h, w):
      logging.info("%s: %dx%d px; reading its %dx%d overview", path, w, h, cw, ch)
    data = chosen.asarray()
    extra = getattr(tif.pages[0], "extrasamples", ()) or ()
    alpha = any(int(v) in (1, 2) for v in extra)  # Associated or unassociated alpha (TIFF ExtraSamples).
    return _channels_last(data, chosen.axes), alpha


def _hw(shape, axes) -> tuple[int, int]:
  return shape[axes.index("Y")], shape[axes.index("X")]


def _channels_last(data: np.ndarray, axes: str) -> np.ndarray:
  """tifffile's axes (e.g. 'YXS', 'SYX', 'CYX', 'YX') -> [H, W] or [H, W, C]."""
  while any(a not in "YXSC" for a in axes):  # Extra axes (pages, time, ...): their first entry.
    i = next(i for i, a in enumerate(axes) if a not in "YXSC")
    data, axes = data.take(0, axis=i), axes[:i] + axes[i + 1:]
  order = [axes.index("Y"), axes.index("X")] + [i for i, a in enumerate(axes) if a in "SC"]
  return np.transpose(data, order)


def _read_pil(fh, path: str, options: ReadOptions) -> tuple[np.ndarray, bool]:
  with Image.open(fh) as im:
    w, h = im.size
    # JPEG decodes at down to 1/8 scale per side: enough when that brings it under max_pixels.
    reducible = im.format == "JPEG" and max(w, h) > options.max_side and w * h / 64 <= options.max_pixels
    _limit(path, w, h, options, reducible)
    if reducible and max(w, h) > options.max_side:
      im.draft("RGB", (max(1, w * options.max_side // max(w, h)), max(1, h * options.max_side // max(w, h))))
    if im.mode in ("RGB", "L"):
      return np.asarray(im), False
    if im.mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
      return np.asarray(im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")), True
    if im.mode in ("RGBA", "LA"):
      return np.asarray(im), True
    return np.asarray(im), False  # I;16, I, F: numeric single-band data, stretched.


def read_image(path: str, options: ReadOptions = ReadOptions()) -> np.ndarray:
  """An image file as uint8 [H, W, 3] (module doc); ImageReadError names the file."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ImageReadError(f"Image file not found: {path}")
  with open(path, "rb") as fh:
    return decode(fh, path, options)


def probe_bytes(data: bytes, source: str) -> tuple[str, str, tuple[int, int]]:
  """(format, PIL mode, (width, height)) from the header only; ImageReadError names `source`."""
  previous = Image.MAX_IMAGE_PIXELS
  try:
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(io.BytesIO(data)) as im:
      return im.format or "", im.mode, im.size
  except (OSError, ValueError, SyntaxError) as e:
    raise ImageReadError(f"Cannot read image {source}: {e}") from e
  finally:
    Image.MAX_IMAGE_PIXELS = previous


def decode_bytes(data: bytes, source: str, options: ReadOptions = ReadOptions()) -> np.ndarray:
  """Encoded image bytes (any format read_image reads) -> uint8 [H, W, 3]; errors name `source`."""
  return decode(io.BytesIO(data), source, options)


def decode(fh, source: str, options: ReadOptions = ReadOptions()) -> np.ndarray:
  """A seekable binary file object -> uint8 [H, W, 3]; errors name `source`."""
  previous = Image.MAX_IMAGE_PIXELS
  try:
    Image.MAX_IMAGE_PIXELS = None  # Our own header check (max_pixels) replaces PIL's bomb guard.
    if _is_tiff(fh):
      try:
        data, alpha = _read_tiff(fh, source, options)
      except ImageReadError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        logging.info("%s: tifffile could not read it (%s); trying PIL", source, e)
        fh.seek(0)
        data, alpha = _read_pil(fh, source, options)
    else:
      data, alpha = _read_pil(fh, source, options)
    return _fit(to_rgb(data, options, source=source, alpha=alpha), options.max_side)
  except ImageReadError:
    raise
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError) as e:
    raise ImageReadError(f"Cannot read image {source}: {e}") from e
  finally:
    Image.MAX_IMAGE_PIXELS = previous


def expand_images(spec: str | Sequence[str], extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[str]:
  """A directory (recursively, files with image extensions), a glob pattern, or a list -> sorted file paths."""
  import glob  # pylint: disable=g-import-not-at-top
  if not isinstance(spec, str):
    return [os.fspath(p) for p in spec]
  if os.path.isdir(spec):
    found = [os.path.join(d, f) for d, _, fs in os.walk(spec) for f in fs if f.lower().endswith(tuple(extensions))]
  else:
    found = [p for p in glob.glob(os.path.expanduser(spec), recursive=True) if os.path.isfile(p)]
  if not found:
    raise FileNotFoundError(f"No image files match {spec!r}")
  return sorted(found)
