"""Samples read straight out of archives (webdataset .tar, .zip + CSV): the readers behind the parallel builds.

The unit of work (and of resume) is one input `Unit`: a .tar shard, a .zip archive or an image folder. A reader
lists the units of a manual_dir, then turns each unit into `Sample`s (a key and its members' bytes) without
unpacking anything to disk. Builders map samples to examples; `parallel_build` runs units in worker processes.

Tars are read with Python's `tarfile` in streaming mode ("r|*": one forward pass, gzip/bz2/xz too), grouped into
samples by the webdataset convention (the key is a member's path up to the first '.' of its file name, the rest is
the field name, lower-cased; a sample's members are consecutive). The `webdataset` library would add its
pipeline, its dependencies and its own error handlers (which drop records without telling why) to every build;
tarfile is the standard library, reads from any file object (so epath/gcsfuse paths too), and lets every skipped
record be counted by reason. The tests write their shards with webdataset.TarWriter, so the two agree on the format.

Images are checked from their headers, never fully decoded, when they can be stored as they are: an upright
8-bit RGB JPEG that ends with its EOI marker, or an 8-bit RGB PNG that ends with its IEND chunk (a truncated
download fails the end-marker check, then the full decode, and is skipped as a corrupt image). Anything else
(grayscale, CMYK, 16-bit, TIFF, WebP, EXIF-turned, larger than `max_side`) is decoded by rsvlm_jax.data.image_io
and re-encoded: PNG, or JPEG (quality 95) when a JPEG is scaled down to `max_side`.
"""
from __future__ import annotations

import collections
import dataclasses
import io
import posixpath
import re
import tarfile
from typing import Iterator
import zipfile
import zlib

from etils import epath
from PIL import Image

from rsvlm_jax.data import image_io

# Reasons a record is skipped (the keys of the build summary's counts).
CORRUPT_IMAGE = "corrupt image"
NO_IMAGE = "no image"
NO_CAPTION = "no caption"
UNREADABLE_MEMBER = "unreadable member"
DUPLICATE_KEY = "duplicate key"
FIRST_SKIPPED = 20  # How many skipped records a summary names (by unit and key).

_SPLIT_WORDS = {"train": "train", "val": "validation", "valid": "validation", "validation": "validation",
                "test": "test"}
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND\xaeB`\x82"
_MAX_PIXELS = image_io.ReadOptions().max_pixels


class SkipRecord(ValueError):
  """A record that cannot be used; `reason` is one of the constants above, the message says why."""

  def __init__(self, reason: str, detail: str):
    super().__init__(detail)
    self.reason = reason


@dataclasses.dataclass(frozen=True)
class Unit:
  """One input archive or folder: `name` is its path relative to manual_dir ('/'-separated)."""
  name: str
  path: str
  split: str = ""  # From the name where the layout says so ('' = decided per record).

  def stat(self) -> dict[str, int]:
    """Size and mtime of the input: a finished unit whose input changed is rebuilt."""
    st = epath.Path(self.path).stat()
    return {"size": int(st.length), "mtime": int(st.mtime)}


@dataclasses.dataclass
class Sample:
  """A key and the bytes of its fields (webdataset: member extensions; CSV: the row's image and columns)."""
  key: str
  fields: dict[str, bytes]
  error: str = ""  # Set when the sample's members could not be read (reason UNREADABLE_MEMBER).


class SkipLog:
  """Counts skipped records by reason and names the first few by unit and key."""

  def __init__(self):
    self.counts: collections.Counter = collections.Counter()
    self.first: list[dict[str, str]] = []

  def add(self, unit: str, key: str, reason: str, detail: str) -> None:
    self.counts[reason] += 1
    if len(self.first) < FIRST_SKIPPED:
      self.first.append({"unit": unit, "key": key, "reason": reason, "detail": detail})

  def merge(self, counts: dict[str, int], first: list[dict[str, str]]) -> None:
    self.counts.update(counts)
    self.first.extend(first[:max(0, FIRST_SKIPPED - len(self.first))])

  def as_json(self) -> dict:
    return {"skipped": dict(sorted(self.counts.items())), "first_skipped": list(self.first)}


# --------------------------------------------------------------------------- listing units


def split_from_name(name: str, default: str = "train") -> str:
  """'pub11-val-0003.tar' -> 'validation'; 'test/000.tar' -> 'test'; no split word -> `default`."""
  words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
  for word in reversed(words):  # The file name's own word wins over a folder's.
    if word in _SPLIT_WORDS:
      return _SPLIT_WORDS[word]
  return default


def find_files(manual_dir: epath.PathLike, suffixes: tuple[str, ...]) -> list[tuple[str, epath.Path]]:
  """(relative name, path) of every file under manual_dir ending in one of `suffixes`, sorted by name."""
  root = epath.Path(manual_dir)
  found, folders = [], [root]
  while folders:  # iterdir, not rglob: epath refuses '**' (on GCS it would be one request per folder anyway).
    for path in sorted(folders.pop().iterdir()):
      if path.name.startswith("."):
        continue
      if path.is_dir():
        folders.append(path)
      elif path.name.lower().endswith(suffixes):
        found.append((str(path.relative_to(root)).replace("\\", "/"), path))
  return sorted(found)


# --------------------------------------------------------------------------- tar (webdataset)


def _split_member(name: str) -> tuple[str, str]:
  """'dir/000123.img_content' -> ('dir/000123', 'img_content') (webdataset's key convention)."""
  directory, base = posixpath.split(name)
  if "." not in base:
    return name, ""
  stem, ext = base.split(".", 1)
  return posixpath.join(directory, stem), ext.lower()


def tar_samples(path: epath.PathLike) -> Iterator[Sample]:
  """Samples of a webdataset tar, streamed (nothing unpacked); a damaged member ends the shard as one
  `Sample` with `error` set (the members after it cannot be found in a stream)."""
  key, fields = None, {}
  with epath.Path(path).open("rb") as f:
    try:
      with tarfile.open(fileobj=f, mode="r|*") as tar:
        for member in tar:
          if not member.isfile():
            continue
          member_key, ext = _split_member(member.name)
          if posixpath.basename(member_key).startswith((".", "__")) or not ext:
            continue  # Hidden files and webdataset's own metadata are not samples.
          data = tar.extractfile(member).read()
          if member_key != key:
            if key is not None:
              yield Sample(key, fields)
            key, fields = member_key, {}
          fields[ext] = data
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
      yield Sample(key or "(shard)", fields, error=f"archive damaged after {len(fields)} member(s) of this "
                   f"sample: {type(e).__name__}: {e}; the rest of the shard is unreadable")
      return
  if key is not None:
    yield Sample(key, fields)


# --------------------------------------------------------------------------- zip + CSV


def zip_members(path: epath.PathLike, wanted: list[tuple[str, str, dict[str, bytes]]]) -> Iterator[Sample]:
  """For each (key, member path, extra fields): a Sample with fields {'image': bytes, **extra}; a missing or
  unreadable member gives a Sample with `error` set. The archive is opened once and read member by member."""
  with epath.Path(path).open("rb") as f:
    try:
      archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError) as e:
      for key, _, extra in wanted:
        yield Sample(key, dict(extra), error=f"archive unreadable: {e}")
      return
    with archive:
      names = set(archive.namelist())
      for key, member, extra in wanted:
        if member not in names:
          yield Sample(key, dict(extra), error=f"{member} is not in the archive")
          continue
        try:
          yield Sample(key, {**extra, "image": archive.read(member)})
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as e:
          yield Sample(key, dict(extra), error=f"{member}: {type(e).__name__}: {e}")


# --------------------------------------------------------------------------- images


def _ends_with(data: bytes, marker: bytes, slack: int = 64) -> bool:
  """The end marker in the last bytes (some writers pad a few bytes after it)."""
  return marker in data[-(len(marker) + slack):]


def _store_as_is(data: bytes, im: Image.Image) -> bool:
  if im.mode != "RGB" or im.size[0] * im.size[1] > _MAX_PIXELS or image_io.exif_orientation(im) != 1:
    return False
  if im.format == "JPEG":
    return _ends_with(data, _JPEG_EOI)
  if im.format == "PNG":  # IHDR bit depth 8, colour type 2 (PIL also calls 16-bit colour PNGs "RGB").
    return data[24:26] == b"\x08\x02" and _ends_with(data, _PNG_IEND, slack=0)
  return False


def prepare_image(data: bytes, source: str, max_side: int = 0) -> bytes:
  """Encoded image bytes as the dataset stores them (see the module docstring); raises SkipRecord."""
  if not data:
    raise SkipRecord(CORRUPT_IMAGE, f"{source}: empty image member")
  try:
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
      with Image.open(io.BytesIO(data)) as im:  # Reads the header only.
        fits = not max_side or max(im.size) <= max_side
        if fits and _store_as_is(data, im):
          return data
        fmt = im.format
    finally:
      Image.MAX_IMAGE_PIXELS = previous
    array = image_io.decode_bytes(data, source, image_io.ReadOptions(max_side=max_side or 1 << 30))
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise SkipRecord(CORRUPT_IMAGE, str(e) if source in str(e) else f"{source}: {e}") from e
  buffer = io.BytesIO()
  if fmt == "JPEG" and not fits:
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
  else:
    Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


def text(data: bytes | None) -> str:
  """A UTF-8 text member, stripped ('' when absent or empty); raises SkipRecord when it is not UTF-8."""
  if data is None:
    return ""
  try:
    return data.decode("utf-8").strip()
  except UnicodeDecodeError as e:
    raise SkipRecord(NO_CAPTION, f"caption is not UTF-8 text (byte {e.start})") from e
