"""Boxes written in text: PaliGemma location tokens and every form RS-GPT4V (and GeoChat) text uses.

Pure Python (re only), so both tokenizers, the evaluators and the dataset builders can share it.

Every box is returned normalised as (ymin, xmin, ymax, xmax) in [0, 1] (the tfds BBox order).

Location tokens (PaliGemma): four tokens `<locYYYY>` in (ymin, xmin, ymax, xmax) order, YYYY in 0000..1023 the
coordinate quantised to NUM_BINS = 1024 bins: bin = round(v * 1023), read back as bin / 1023, so a box
round-trips within half a bin (0.5 / 1023 of the image side).

Text forms (the RS-GPT4V parser; each written as (x1, y1, x2, y2) = left, top, right, bottom):
  `{<x1><y1><x2><y2>}` (optionally `|<angle>`, ignored)  GeoChat style, 0-100 ("percent")
  `<box>(x1,y1),(x2,y2)</box>`                            Qwen-VL style, 0-1000 ("permille")
  `[x1, y1, x2, y2]` or `(x1, y1, x2, y2)`                 0-1 if every value <= 1, else pixels ("bracket")
`bracket_scale` forces the scale of the bracket form ("unit", "percent", "permille", "pixel").
"""
from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

NUM_BINS = 1024
SCALES = {"unit": 1.0, "percent": 100.0, "permille": 1000.0}
LOCATION = re.compile(r"<loc(\d{4})>")
_LOCATION_BOX = re.compile(r"(?:<loc(\d{4})>\s*){4}")

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
BOX_FORMS = (
    ("percent", re.compile(r"\{\s*<" + _NUM + r">\s*<" + _NUM + r">\s*<" + _NUM + r">\s*<" + _NUM
                           + r">(?:\s*\|\s*<" + _NUM + r">)?\s*\}")),
    ("permille", re.compile(r"<box>\s*\(" + _NUM + "," + _NUM + r"\)\s*,?\s*\(" + _NUM + ","
                            + _NUM + r"\)\s*</box>")),
    ("bracket", re.compile(r"[\[(]" + _NUM + "," + _NUM + "," + _NUM + "," + _NUM + r"[\])]")),
)

Box = tuple[float, float, float, float]  # (ymin, xmin, ymax, xmax) in [0, 1].


# --------------------------------------------------------------------------- location tokens


def _bin(v: float) -> int:
  return min(max(int(round(v * (NUM_BINS - 1))), 0), NUM_BINS - 1)


def encode(box: Sequence[float], image_size: Optional[tuple[int, int]] = None) -> str:
  """Four location tokens of `box` = (ymin, xmin, ymax, xmax): in pixels of an image of `image_size` =
  (width, height), or already in [0, 1] when image_size is None. Values outside the image are clipped."""
  if len(box) != 4:
    raise ValueError(f"a box has four values (ymin, xmin, ymax, xmax), got {list(box)}")
  ymin, xmin, ymax, xmax = (float(v) for v in box)
  if ymin > ymax or xmin > xmax:
    raise ValueError(f"inverted box {list(box)} (expected ymin <= ymax and xmin <= xmax)")
  if image_size is not None:
    width, height = image_size
    if width <= 0 or height <= 0:
      raise ValueError(f"image size must be positive, got {image_size}")
    ymin, xmin, ymax, xmax = ymin / height, xmin / width, ymax / height, xmax / width
  return "".join(f"<loc{_bin(v):04d}>" for v in (ymin, xmin, ymax, xmax))


def _from_bins(bins: Sequence[str], image_size: Optional[tuple[int, int]]) -> Box:
  values = [int(b) for b in bins]
  if any(v >= NUM_BINS for v in values):
    raise ValueError(f"location token beyond <loc{NUM_BINS - 1:04d}>: {values}")
  ymin, xmin, ymax, xmax = (v / (NUM_BINS - 1) for v in values)
  if image_size is not None:
    width, height = image_size
    return ymin * height, xmin * width, ymax * height, xmax * width
  return ymin, xmin, ymax, xmax


def decode(text: str, image_size: Optional[tuple[int, int]] = None) -> Box:
  """The first box written as four location tokens in `text`: (ymin, xmin, ymax, xmax) in [0, 1], or in pixels
  of `image_size` = (width, height). ValueError if there is none."""
  boxes = decode_all(text, image_size)
  if not boxes:
    raise ValueError(f"no box of four location tokens in {text!r}")
  return boxes[0]


def decode_all(text: str, image_size: Optional[tuple[int, int]] = None) -> list[Box]:
  """Every box of four consecutive location tokens in `text`, in order (stray tokens are ignored)."""
  return [_from_bins(LOCATION.findall(m.group()), image_size) for m in _LOCATION_BOX.finditer(text)]


# --------------------------------------------------------------------------- RS-GPT4V text forms


@dataclasses.dataclass(frozen=True)
class RawBox:
  coords: tuple[float, float, float, float]  # x1, y1, x2, y2 as written.
  form: str  # "percent", "permille" or "bracket".


def _found_text_boxes(text: str) -> list[tuple[int, RawBox]]:
  found = []
  for form, pattern in BOX_FORMS:
    for m in pattern.finditer(text):
      found.append((m.start(), RawBox(tuple(float(v) for v in m.groups()[:4]), form)))
  return sorted(found, key=lambda item: item[0])


def find_boxes(text: str) -> list[RawBox]:
  """All boxes written in `text` in the RS-GPT4V forms, in order of appearance."""
  return [box for _, box in _found_text_boxes(text)]


def box_scale(box: RawBox, image_size: Optional[tuple[int, int]],
              bracket_scale: str = "auto") -> tuple[float, float]:
  """(x scale, y scale) dividing the written coordinates into [0, 1]."""
  scale = box.form if box.form != "bracket" else bracket_scale
  if scale == "auto":
    scale = "unit" if max(box.coords) <= 1.0 else "pixel"
  if scale == "pixel":
    if image_size is None:
      raise ValueError(f"pixel box {list(box.coords)} needs the image size")
    return float(image_size[0]), float(image_size[1])
  if scale not in SCALES:
    raise ValueError(f"unknown box scale {scale!r}")
  return SCALES[scale], SCALES[scale]


def normalize_box(box: RawBox, image_size: Optional[tuple[int, int]] = None,
                  bracket_scale: str = "auto", tolerance: float = 0.01) -> Box:
  """(ymin, xmin, ymax, xmax) in [0, 1]; raises ValueError for an inverted or out-of-range box."""
  sx, sy = box_scale(box, image_size, bracket_scale)
  x1, y1, x2, y2 = box.coords
  ymin, xmin, ymax, xmax = y1 / sy, x1 / sx, y2 / sy, x2 / sx
  if ymin > ymax or xmin > xmax:
    raise ValueError(f"inverted box {list(box.coords)}")
  if min(ymin, xmin) < -tolerance or max(ymax, xmax) > 1 + tolerance:
    raise ValueError(f"box {list(box.coords)} ({box.form}) outside the image")
  return tuple(min(max(v, 0.0), 1.0) for v in (ymin, xmin, ymax, xmax))


def parse_boxes(text: str, image_size: Optional[tuple[int, int]] = None,
                bracket_scale: str = "auto") -> list[Box]:
  """Every box of `text` in the RS-GPT4V forms, normalised."""
  return [normalize_box(b, image_size, bracket_scale) for b in find_boxes(text)]


def parse_any(text: str, image_size: Optional[tuple[int, int]] = None, bracket_scale: str = "auto") -> list[Box]:
  """Every box of `text` in any form above (location tokens too), normalised, in order of appearance.

  Raises ValueError for an inverted or out-of-range box, or a pixel box without `image_size`.
  """
  found = [(m.start(), _from_bins(LOCATION.findall(m.group()), None)) for m in _LOCATION_BOX.finditer(text)]
  found += [(start, normalize_box(b, image_size, bracket_scale)) for start, b in _found_text_boxes(text)]
  return [box for _, box in sorted(found, key=lambda item: item[0])]
