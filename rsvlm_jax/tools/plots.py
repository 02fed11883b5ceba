"""Pictures the tools write, drawn with PIL only (no plotting dependency)."""
from __future__ import annotations

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont


def confusion_matrix_png(matrix: np.ndarray, classnames: list[str], path: str, *, cell: int = 16,
                         title: str = "") -> None:
  """Row-normalised confusion matrix (rows: true class, columns: predicted) as a heat map with labels."""
  matrix = np.asarray(matrix, np.float64)
  c = len(classnames)
  font = ImageFont.load_default()
  label_w = 8 + 6 * max((len(n) for n in classnames), default=1)
  top = label_w + (18 if title else 4)
  img = Image.new("RGB", (label_w + c * cell + 4, top + c * cell + 4), "white")
  draw = ImageDraw.Draw(img)
  if title:
    draw.text((4, 2), title, fill="black", font=font)
  rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  for i in range(c):
    for j in range(c):
      v = rows[i, j]
      colour = (int(255 * (1 - 0.85 * v)), int(255 * (1 - 0.6 * v)), 255) if i != j else (
          int(255 * (1 - 0.8 * v)), 255, int(255 * (1 - 0.8 * v)))
      x0, y0 = label_w + j * cell, top + i * cell
      draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=colour, outline=(220, 220, 220))
    draw.text((4, top + i * cell + (cell - 11) // 2), classnames[i], fill="black", font=font)
  column_labels = Image.new("RGB", (label_w, c * cell), "white")
  cdraw = ImageDraw.Draw(column_labels)
  for j, name in enumerate(classnames):
    cdraw.text((4, j * cell + (cell - 11) // 2), name, fill="black", font=font)
  img.paste(column_labels.rotate(90, expand=True), (label_w, top - label_w))
  img.save(path)


def line_panels_png(series: dict[str, tuple[np.ndarray, np.ndarray]], path: str, *, title: str = "",
                    panel: tuple[int, int] = (300, 170), columns: int = 3) -> None:
  """Small multiples: one line panel per named (x, y) series, with its y range and last value printed."""
  font = ImageFont.load_default()
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


def captioned_sheet_png(images: list[np.ndarray], captions: list[str], path: str, *, thumb: int = 192,
                        columns: int = 4, lines: int = 5) -> None:
  """A contact sheet: each image as a thumbnail with its caption wrapped underneath."""
  import textwrap  # pylint: disable=g-import-not-at-top
  font = ImageFont.load_default()
  cell_h = thumb + 6 + 12 * lines
  rows = max(1, -(-len(images) // columns))
  sheet = Image.new("RGB", (columns * (thumb + 8), rows * cell_h), "white")
  draw = ImageDraw.Draw(sheet)
  for n, (image, caption) in enumerate(zip(images, captions)):
    x, y = (n % columns) * (thumb + 8) + 4, (n // columns) * cell_h + 2
    im = Image.fromarray(np.asarray(image, np.uint8))
    im.thumbnail((thumb, thumb))
    sheet.paste(im, (x + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
    wrapped = textwrap.wrap(caption, width=max(8, thumb // 6))[:lines]
    for i, text in enumerate(wrapped):
      draw.text((x, y + thumb + 4 + 12 * i), text, fill="black", font=font)
  sheet.save(path)
