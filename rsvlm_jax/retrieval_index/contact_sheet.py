"""A contact sheet of search hits: one thumbnail per hit, in rank order, with its rank, score and file name."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from rsvlm_jax.data import image_io

HEADER = 22  # Height of the title line, px.
LABEL = 28  # Height of the two label lines under each thumbnail, px.


def sheet_size(n: int, *, thumb: int = 160, cols: int = 5) -> tuple[int, int]:
  """(width, height) in px of the sheet of `n` hits."""
  cols = max(1, min(cols, n))
  rows = max(1, -(-n // cols))
  return cols * thumb, HEADER + rows * (thumb + LABEL)


def _thumbnail(path: str, thumb: int, read: Callable[[str], np.ndarray]) -> Image.Image:
  """The image scaled to fit thumb x thumb (on grey, in a white frame); an unreadable file: a marked grey square."""
  cell = Image.new("RGB", (thumb, thumb), (128, 128, 128))
  try:
    image = Image.fromarray(read(path))
  except Exception:  # pylint: disable=broad-except  # A hit deleted or damaged since indexing.
    ImageDraw.Draw(cell).text((6, thumb // 2 - 6), "cannot read", fill=(255, 255, 255))
    return cell
  inner = thumb - 4  # A 2 px white frame between neighbours.
  scale = inner / max(image.width, image.height)
  image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BICUBIC)
  cell = Image.new("RGB", (thumb, thumb), "white")
  cell.paste(Image.new("RGB", (inner, inner), (128, 128, 128)), (2, 2))
  cell.paste(image, ((thumb - image.width) // 2, (thumb - image.height) // 2))
  return cell


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
  """`text`, shortened from the left with '…' until it fits `width` px."""
  if draw.textlength(text) <= width:
    return text
  while text and draw.textlength("…" + text) > width:
    text = text[1:]
  return "…" + text


def render(hits: Sequence[dict[str, Any]], *, title: str = "", thumb: int = 160, cols: int = 5,
           read: Callable[[str], np.ndarray] | None = None) -> Image.Image:
  """The sheet of `hits` ({"rank", "path", "score"}), `title` on top; `read(path)` -> uint8 [H, W, 3]."""
  read = read or image_io.read_image
  width, height = sheet_size(len(hits), thumb=thumb, cols=cols)
  cols = max(1, min(cols, len(hits)))
  sheet = Image.new("RGB", (width, height), "white")
  draw = ImageDraw.Draw(sheet)
  draw.text((4, 5), _fit(draw, title, width - 8), fill="black")
  for i, hit in enumerate(hits):
    r, c = divmod(i, cols)
    x, y = c * thumb, HEADER + r * (thumb + LABEL)
    sheet.paste(_thumbnail(hit["path"], thumb, read), (x, y))
    draw.text((x + 3, y + thumb + 2), f"#{hit['rank']}  score {hit['score']:.4f}", fill="black")
    draw.text((x + 3, y + thumb + 14), _fit(draw, os.path.basename(hit["path"]), thumb - 6), fill=(80, 80, 80))
  return sheet


def stack(sheets: Sequence[Image.Image]) -> Image.Image:
  """Sheets one under the other (several queries in one PNG), left-aligned on white."""
  sheet = Image.new("RGB", (max(s.width for s in sheets), sum(s.height for s in sheets)), "white")
  y = 0
  for s in sheets:
    sheet.paste(s, (0, y))
    y += s.height
  return sheet
