"""Reading images for every tool: JPEG, PNG, TIFF and GeoTIFF; 8/16-bit integer and float; 1, 3, 4 or more bands.

What comes out is always uint8 [H, W, 3] RGB, by these documented rules (never silent clipping):
- 8-bit data is used as is. Palette, grayscale (replicated to three channels), gray+alpha, RGBA and CMYK
  images convert to RGB; alpha is dropped.
- Data of more than 8 bits (uint16, int, float) is stretched per band between the `stretch` percentiles
  (default 2 and 98) of its finite values: those map to 0 and 255, the tails beyond them saturate (the usual
  display stretch of remote-sensing viewers); NaN/inf become 0. `stretch=(0, 100)` is a min-max stretch.
  16-bit PNGs (gray, gray+alpha, RGB, RGBA) are read at full depth (PIL alone keeps only the high byte of
  16-bit colour PNGs) and stretched like TIFFs.
- Orientation: the EXIF Orientation tag of JPEG, PNG and WebP files (cameras, phones, drones) is applied, as
  PIL.ImageOps.exif_transpose does, so the image comes out upright. A TIFF's Orientation tag is ignored, as
  GDAL ignores it (a GeoTIFF's rows follow its georeferencing).
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
import fnmatch
import glob
import io
import os
from typing import Iterator, Sequence

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


# 16-bit colour PNGs: PIL decodes them keeping the high byte of each sample (its rawmode for the PNG).
_PNG16_COLOUR = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}  # -> the rawmode that keeps the low byte.
_PNG16_GRAY_ALPHA = "LA;16B"


def _png_samples(fh, rawmode: str) -> np.ndarray:
  """The PNG in `fh` decoded by PIL (filters, interlacing) with its tile's rawmode replaced by `rawmode`."""
  fh.seek(0)
  with Image.open(fh) as im:
    tile = im.tile[0]
    im.tile = [tile._replace(args=rawmode) if hasattr(tile, "_replace") else (*tile[:3], rawmode)]
    return np.asarray(im)


def _png16(fh, rawmode: str | None) -> np.ndarray | None:
  """The 16-bit gray+alpha, RGB or RGBA PNG in `fh` as uint16 [H, W, C] at full depth; None for any other
  PIL rawmode.

  PIL has no 16-bit colour mode. Its PNG decoder undoes the filters and interlacing, then unpacks each
  big-endian sample to 8 bits by its high byte ('RGB;16B'); decoding with the little-endian rawmode ('RGB;16L')
  instead yields the low bytes. Gray+alpha (4 bytes a pixel) decodes as 8-bit RGBA: G hi, G lo, A hi, A lo.
  """
  if rawmode in _PNG16_COLOUR:
    high = _png_samples(fh, rawmode).astype(np.uint16)
    return high << 8 | _png_samples(fh, _PNG16_COLOUR[rawmode])
  if rawmode == _PNG16_GRAY_ALPHA:
    b = _png_samples(fh, "RGBA").astype(np.uint16)
    return np.stack([b[..., 0] << 8 | b[..., 1], b[..., 2] << 8 | b[..., 3]], -1)
  return None


EXIF_ORIENTATION = 0x0112


def exif_orientation(im: Image.Image) -> int:
  """The EXIF Orientation (1-8) of an opened JPEG/PNG/WebP; 1 (upright) when absent, invalid, or a TIFF."""
  if im.format == "TIFF":
    return 1
  try:
    value = im.getexif().get(EXIF_ORIENTATION, 1)
  except Exception:  # pylint: disable=broad-except  # Corrupt EXIF: the pixels are still readable.
    return 1
  return value if isinstance(value, int) and 1 <= value <= 8 else 1


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
  """[H, W, ...] as displayed for an EXIF Orientation value (what PIL.ImageOps.exif_transpose does)."""
  return {
      2: lambda a: a[:, ::-1],  # Mirrored.
      3: lambda a: a[::-1, ::-1],  # Upside down.
      4: lambda a: a[::-1],  # Mirrored vertically.
      5: lambda a: a.swapaxes(0, 1),  # Transposed.
      6: lambda a: np.rot90(a, -1),  # Camera turned clockwise: rotate 90 degrees clockwise.
      7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],  # Transverse.
      8: lambda a: np.rot90(a, 1),  # Rotate 90 degrees counter-clockwise.
  }.get(orientation, lambda a: a)(array)


def _pil_array(im) -> tuple[np.ndarray, bool]:
  """(samples, has alpha) of an opened PIL image."""
  if im.mode in ("RGB", "L"):
    return np.asarray(im), False
  if im.mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
    return np.asarray(im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")), True
  if im.mode in ("RGBA", "LA"):
    return np.asarray(im), True
  return np.asarray(im), False  # I;16, I, F: numeric single-band data, stretched.


def _read_pil(fh, path: str, options: ReadOptions) -> tuple[np.ndarray, bool]:
  with Image.open(fh) as im:
    w, h = im.size
    # JPEG decodes at down to 1/8 scale per side: enough when that brings it under max_pixels.
    reducible = im.format == "JPEG" and max(w, h) > options.max_side and w * h / 64 <= options.max_pixels
    _limit(path, w, h, options, reducible)
    if reducible and max(w, h) > options.max_side:
      im.draft("RGB", (max(1, w * options.max_side // max(w, h)), max(1, h * options.max_side // max(w, h))))
    rawmode = im.tile[0][3] if im.format == "PNG" and len(im.tile) == 1 else None  # Before loading clears it.
    deep = rawmode in _PNG16_COLOUR or rawmode == _PNG16_GRAY_ALPHA
    data, alpha = (None, im.mode == "RGBA") if deep else _pil_array(im)
    orientation = exif_orientation(im)  # After the pixels: a PNG's eXIf chunk may follow them.
  if deep:
    data = _png16(fh, rawmode)
  return orient(data, orientation), alpha


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


def _walk(root: str) -> Iterator[tuple[str, list[str]]]:
  """(folder, file names) under `root`, following symlinked folders but never into a loop (a folder that is
  its own ancestor, e.g. `sub/loop -> ..`)."""
  ancestors = {root: frozenset([os.path.realpath(root)])}
  loops = 0
  for folder, dirs, files in os.walk(root, followlinks=True):
    chain, keep = ancestors.pop(folder), []
    for name in sorted(dirs):
      real = os.path.realpath(os.path.join(folder, name))
      if real in chain:
        loops += 1
        continue
      ancestors[os.path.join(folder, name)] = chain | {real}
      keep.append(name)
    dirs[:] = keep
    yield folder, files
  if loops:
    logging.warning("%s: skipped %d symlinked folder(s) that loop back to a folder above them", root, loops)


def _match(parts: Sequence[str], patterns: Sequence[str]) -> bool:
  """Path components against glob components ('**': any number of folders), as glob.glob matches them."""
  if not patterns:
    return not parts
  if patterns[0] == "**":
    return any(_match(parts[i:], patterns[1:]) for i in range(len(parts) + 1)
               if not any(p.startswith(".") for p in parts[:i]))  # '**' skips hidden folders, as glob does.
  return bool(parts) and (not parts[0].startswith(".") or patterns[0].startswith(".")) and (
      fnmatch.fnmatchcase(parts[0], patterns[0]) and _match(parts[1:], patterns[1:]))


def _glob(pattern: str) -> list[str]:
  """glob.glob(pattern, recursive=True) without following symlink loops under '**'."""
  parts = pattern.split(os.sep)
  if "**" not in parts:
    return glob.glob(pattern)
  i = parts.index("**")
  prefix = os.sep.join(parts[:i]) or (os.sep if i else "")  # '' for '**/*.png', '/' for '/**/*.png'.
  bases = glob.glob(prefix) if any(c in prefix for c in "*?[") else [prefix]
  found = []
  for base in bases:
    if not os.path.isdir(base or "."):
      continue
    for folder, files in _walk(base or "."):
      rel = os.path.relpath(folder, base or ".")
      rel_parts = [] if rel == "." else rel.split(os.sep)
      found += [os.path.join(base, *rel_parts, f) for f in files if _match(rel_parts + [f], parts[i:])]
  return found


def unique_files(paths: Sequence[str], what: str) -> list[str]:
  """`paths` without those naming a file already listed (same real path, through symlinks); logs the count."""
  seen, kept = set(), []
  for path in paths:
    real = os.path.realpath(path)
    if real not in seen:
      seen.add(real)
      kept.append(path)
  if len(kept) < len(paths):
    logging.warning("%s: dropped %d path(s) naming a file already listed (symlinks to the same file)", what,
                    len(paths) - len(kept))
  return kept


def expand_images(spec: str | Sequence[str], extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[str]:
  """A directory (recursively, files with image extensions), a glob pattern, or a list -> file paths.

  Folders and globs give sorted paths; symlinked folders are followed except into a loop, and a file reached
  by several paths (symlinks) is listed once, by the first of its paths in sorted order (the count dropped is
  logged). A list keeps its order, without repeats of one file.
  """
  if not isinstance(spec, str):
    return unique_files([os.fspath(p) for p in spec], "image list")
  if os.path.isdir(spec):
    found = [os.path.join(d, f) for d, fs in _walk(spec) for f in fs if f.lower().endswith(tuple(extensions))]
  else:
    found = [p for p in _glob(os.path.expanduser(spec)) if os.path.isfile(p)]
  if not found:
    raise FileNotFoundError(f"No image files match {spec!r}")
  return unique_files(sorted(found), spec)
