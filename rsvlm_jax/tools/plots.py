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
