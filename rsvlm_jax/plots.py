"""Pictures the runs and tools write (training curves, confusion matrix, captioned sheet), drawn with PIL only."""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont


@dataclasses.dataclass(frozen=True)
class Text:
  """One string of a picture: its top-left corner (of the rotated box when `vertical`), read bottom to top."""
  xy: tuple[int, int]
  text: str
  fill: Any = "black"
  vertical: bool = False


def default_font() -> ImageFont.ImageFont:
  """PIL's bitmap font: 6 px a character (a space too), 11 px high, Latin-1 only (see drawable).

  Pillow >= 10.1's ImageFont.load_default() is a 10 px TrueType font whose space is 2 px wide: the words of a
  caption ran together, as if the spaces had been dropped."""
  return getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()


def drawable(text: str, font=None) -> str:
  """`text` on one line, with the characters `font` (default_font) cannot draw as "?"."""
  text = " ".join(str(text).split())
  try:
    (font or default_font()).getlength(text)
    return text
  except UnicodeEncodeError:
    return text.encode("latin-1", "replace").decode("latin-1")


def text_width(text: str, font=None) -> float:
  return (font or default_font()).getlength(drawable(text, font))


def fit_text(text: str, width: float, font=None) -> str:
  """`text`, shortened in the middle with "..." when it is wider than `width` px."""
  text = drawable(text, font)
  if text_width(text, font) <= width:
    return text
  keep = len(text)
  while keep > 1 and text_width(text[:(keep + 1) // 2] + "..." + text[len(text) - keep // 2:], font) > width:
    keep -= 1
  return text[:(keep + 1) // 2] + "..." + text[len(text) - keep // 2:]


def wrap_text(text: str, width: float, max_lines: int, font=None) -> list[str]:
  """`text` in lines of at most `width` px, broken at spaces (a longer word is broken inside), its words
  separated by one space; the last of `max_lines` lines ends with "..." when text is left over."""
  words = drawable(text, font).split(" ")
  lines, line = [], ""
  for word in (w for w in words if w):
    while word:
      candidate = f"{line} {word}" if line else word
      if text_width(candidate, font) <= width:
        line, word = candidate, ""
      elif line:
        lines.append(line)
        line = ""
      else:  # One word wider than the line: break it.
        cut = 1
        while cut < len(word) and text_width(word[:cut + 1], font) <= width:
          cut += 1
        lines.append(word[:cut])
        word = word[cut:]
  if line:
    lines.append(line)
  if len(lines) > max_lines:
    last = lines[max_lines - 1]
    while last and text_width(last + "...", font) > width:
      last = last[:-1]
    lines = lines[:max_lines - 1] + [last.rstrip() + "..."]
  return lines


def _draw(img: Image.Image, texts: list[Text], font) -> None:
  draw = ImageDraw.Draw(img)
  for t in texts:
    if not t.vertical:
      draw.text(t.xy, t.text, fill=t.fill, font=font)
      continue
    w = int(math.ceil(text_width(t.text, font))) + 2
    strip = Image.new("RGB", (w, 12), "white")
    ImageDraw.Draw(strip).text((1, 0), t.text, fill=t.fill, font=font)
    img.paste(strip.rotate(90, expand=True), t.xy)


@dataclasses.dataclass(frozen=True)
class ConfusionLayout:
  """Where confusion_matrix_png draws: picture size, cell size, top-left of cell (0, 0), and every string."""
  size: tuple[int, int]
  cell: int
  origin: tuple[int, int]
  texts: list[Text]


def confusion_layout(matrix: np.ndarray, classnames: list[str], *, cell: int = 16, title: str = "",
                     numbers: bool | None = None, max_numbered: int = 30, font=None) -> ConfusionLayout:
  """The layout of confusion_matrix_png: the title, "predicted class" over the columns' names (read bottom to
  top), "true class" beside the rows' names and, when `numbers` (default: up to `max_numbered` classes),
  each cell's count (cells grow to fit it)."""
  font = font or default_font()
  counts = np.asarray(matrix)
  c = len(classnames)
  numbers = c <= max_numbered if numbers is None else numbers
  names = [fit_text(n, 6 * 40, font) for n in classnames]  # Names cut at 40 characters.
  if numbers and c:
    cell = max(cell, int(max(text_width(_count(v), font) for v in counts.flat)) + 6, 14)
  name_w = 8 + int(max((text_width(n, font) for n in names), default=6))
  axis = 16  # The axis label's strip.
  head = 16 if title else 2
  left, top = axis + name_w, head + axis + name_w
  grid = c * cell
  pred, true = "predicted class", "true class"
  pred_w, true_w = int(text_width(pred, font)), int(text_width(true, font))
  size = (max(left + max(grid, pred_w) + 4, int(text_width(title, font)) + 8), top + max(grid, true_w) + 4)
  texts = [Text((4, 2), drawable(title, font))] if title else []
  texts.append(Text((left + max(0, (grid - pred_w) // 2), head + 1), pred))
  texts.append(Text((2, top + max(0, (grid - true_w) // 2)), true, vertical=True))
  for i, name in enumerate(names):
    texts.append(Text((axis + 2, top + i * cell + (cell - 11) // 2), name))
    texts.append(Text((left + i * cell + (cell - 12) // 2, head + axis + name_w - 4 - int(text_width(name, font))),
                      name, vertical=True))
  if numbers:
    rows = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    for i in range(c):
      for j in range(c):
        n = _count(counts[i, j])
        fill = (150, 150, 150) if counts[i, j] == 0 else ("white" if rows[i, j] > 0.6 else "black")
        texts.append(Text((left + j * cell + (cell - int(text_width(n, font))) // 2 + 1,
                           top + i * cell + (cell - 11) // 2), n, fill=fill))
  return ConfusionLayout(size, cell, (left, top), texts)


def _count(v) -> str:
  return f"{v:g}" if isinstance(v, float) and not float(v).is_integer() else str(int(v))


def confusion_matrix_png(matrix: np.ndarray, classnames: list[str], path: str, *, cell: int = 16,
                         title: str = "", numbers: bool | None = None, max_numbered: int = 30) -> None:
  """Confusion matrix (rows: true class, columns: predicted) as a heat map of the row-normalised counts, with
  both axes and every class named and, for up to `max_numbered` classes (or as `numbers` says), each
  cell's count printed in it. See confusion_layout."""
  matrix = np.asarray(matrix)
  font = default_font()
  lay = confusion_layout(matrix, classnames, cell=cell, title=title, numbers=numbers, max_numbered=max_numbered,
                         font=font)
  img = Image.new("RGB", lay.size, "white")
  draw = ImageDraw.Draw(img)
  rows = matrix.astype(np.float64) / np.maximum(matrix.astype(np.float64).sum(axis=1, keepdims=True), 1)
  (left, top), cell = lay.origin, lay.cell
  for i in range(len(classnames)):
    for j in range(len(classnames)):
      v = rows[i, j]
      colour = (int(255 * (1 - 0.85 * v)), int(255 * (1 - 0.6 * v)), 255) if i != j else (
          int(255 * (1 - 0.8 * v)), 255, int(255 * (1 - 0.8 * v)))
      x0, y0 = left + j * cell, top + i * cell
      draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=colour, outline=(220, 220, 220))
  _draw(img, lay.texts, font)
  img.save(path)


def line_panels_png(series: dict[str, tuple[np.ndarray, np.ndarray]], path: str, *, title: str = "",
                    panel: tuple[int, int] = (300, 170), columns: int = 3) -> None:
  """Small multiples: one line panel per named (x, y) series, with its y range and last value printed."""
  font = default_font()
  names = list(series)
  rows = max(1, -(-len(names) // columns))
  pw, ph = panel
  img = Image.new("RGB", (columns * pw, rows * ph + (18 if title else 0)), "white")
  draw = ImageDraw.Draw(img)
  if title:
    draw.text((6, 3), title, fill="black", font=font)
  for n, name in enumerate(names):
    x, y = (np.asarray(a, np.float64) for a in series[name])
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    ox, oy = (n % columns) * pw, (n // columns) * ph + (18 if title else 0)
    left, top, right, bottom = ox + 46, oy + 18, ox + pw - 8, oy + ph - 18
    draw.rectangle([left, top, right, bottom], outline=(180, 180, 180))
    draw.text((ox + 6, oy + 3), name, fill="black", font=font)
    if len(y) == 0:
      continue
    lo, hi = float(y.min()), float(y.max())
    span, xspan = (hi - lo) or 1.0, (float(x.max() - x.min()) or 1.0)
    pts = [(left + (xi - x.min()) / xspan * (right - left), bottom - (yi - lo) / span * (bottom - top))
           for xi, yi in zip(x, y)]
    if len(pts) > 1:
      draw.line(pts, fill=(31, 90, 180), width=2)
    else:
      draw.ellipse([pts[0][0] - 2, pts[0][1] - 2, pts[0][0] + 2, pts[0][1] + 2], fill=(31, 90, 180))
    draw.text((ox + 2, top - 4), f"{hi:.3g}", fill="gray", font=font)
    draw.text((ox + 2, bottom - 8), f"{lo:.3g}", fill="gray", font=font)
    draw.text((left, bottom + 3), f"step {int(x.min())}", fill="gray", font=font)
    draw.text((right - 90, bottom + 3), f"{int(x.max())}: {y[-1]:.4g}", fill="black", font=font)
  img.save(path)


def training_curves_png(metrics_jsonl: str, path: str) -> bool:
  """WORKDIR/metrics.jsonl -> a PNG of the loss, each loss term, the learning rate and the temperature per
  step (the rows a run writes); False when there is no training row yet."""
  import json  # pylint: disable=g-import-not-at-top
  rows = []
  with open(metrics_jsonl, encoding="utf-8") as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if "loss" in row and "step" in row:
        rows.append(row)
  if not rows:
    return False
  by_step = {r["step"]: r for r in rows}  # A resumed run rewrites steps: keep the latest row of each.
  steps = sorted(by_step)
  keys = ["loss"] + sorted(k for k in by_step[steps[-1]] if k.startswith("loss/")) + [
      k for k in ("lr", "temperature", "grad_norm") if k in by_step[steps[-1]]]
  series = {k: (np.asarray(steps), np.asarray([by_step[s].get(k, np.nan) for s in steps], np.float64)) for k in keys}
  line_panels_png(series, path, title=f"training curves ({len(steps)} steps)")
  return True


def sheet_layout(captions: list[str], labels: list[str] | None = None, *, thumb: int = 192, columns: int = 4,
                 lines: int = 5, font=None) -> tuple[tuple[int, int], list[tuple[tuple[int, int, int, int], list[Text]]]]:
  """(size, [(image box (x, y, w, h), its strings)]) of captioned_sheet_png: per panel its label (file name,
  size) on the first line, the image below, and the caption wrapped under it in up to `lines` lines."""
  font = font or default_font()
  cell_h = thumb + 6 + 12 * lines
  rows = max(1, -(-len(captions) // columns))
  panels = []
  for n, caption in enumerate(captions):
    x, y = (n % columns) * (thumb + 8) + 4, (n // columns) * cell_h + 2
    texts, box = [], (x, y, thumb, thumb)
    if labels:
      texts.append(Text((x, y), fit_text(labels[n], thumb, font), fill=(90, 90, 90)))
      box = (x, y + 13, thumb, thumb - 13)
    texts += [Text((x, y + thumb + 4 + 12 * i), line) for i, line in enumerate(wrap_text(caption, thumb, lines, font))]
    panels.append((box, texts))
  return (columns * (thumb + 8), rows * cell_h), panels


def sheet_label(path: str, resolution: int | None = None) -> str:
  """A panel's label: the file name, and the size (px) the model read it at."""
  return os.path.basename(path) + (f" \xb7 {resolution} px" if resolution else "")


def captioned_sheet_png(images: list[np.ndarray], captions: list[str], path: str, *, thumb: int = 192,
                        columns: int = 4, lines: int = 5, labels: list[str] | None = None) -> None:
  """A contact sheet: each image as a thumbnail under its label (e.g. sheet_label: file name and bucket) with
  its caption wrapped underneath. See sheet_layout."""
  font = default_font()
  size, panels = sheet_layout(captions, labels, thumb=thumb, columns=columns, lines=lines, font=font)
  sheet = Image.new("RGB", size, "white")
  for image, ((x, y, w, h), texts) in zip(images, panels):
    im = Image.fromarray(np.asarray(image, np.uint8))
    scale = min(w / im.width, h / im.height)  # Small images are enlarged (pixels kept sharp) to fill the box.
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                   Image.NEAREST if scale > 1 else Image.LANCZOS)
    sheet.paste(im, (x + (w - im.width) // 2, y + (h - im.height) // 2))
    _draw(sheet, texts, font)
  sheet.save(path)
