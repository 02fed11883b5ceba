"""DRIS coarse-to-fine: the K tiles of a tile_grid x tile_grid split with the highest summed complexity,
cropped from the full-resolution image, with their boxes (for position embeddings)."""
from __future__ import annotations

import numpy as np
from PIL import Image


def select_tiles(cmap: np.ndarray, tile_grid: int, num_tiles: int) -> np.ndarray:
  """(row, col) [num_tiles, 2] of the tiles with the highest summed complexity (ties: row-major order)."""
  if num_tiles > tile_grid * tile_grid:
    raise ValueError(f"num_tiles {num_tiles} exceeds the {tile_grid}x{tile_grid} tile grid")
  h, w = cmap.shape
  rows = (np.arange(h) * tile_grid) // h
  cols = (np.arange(w) * tile_grid) // w
  sums = np.zeros((tile_grid, tile_grid), np.float64)
  np.add.at(sums, (rows[:, None], cols[None, :]), cmap)
  order = np.argsort(-sums.reshape(-1), kind="stable")[:num_tiles]
  return np.stack([order // tile_grid, order % tile_grid], -1).astype(np.int32)


def tile_boxes(tiles: np.ndarray, tile_grid: int) -> np.ndarray:
  """Normalized [ymin, xmin, ymax, xmax] of each tile."""
  t = np.asarray(tiles, np.float32)
  return np.concatenate([t / tile_grid, (t + 1) / tile_grid], -1)


def crop_tiles(image: np.ndarray, tiles: np.ndarray, tile_grid: int, out_size: int) -> np.ndarray:
  """uint8 [num_tiles, out_size, out_size, 3] crops of the full-resolution image."""
  h, w = image.shape[:2]
  out = []
  for r, c in np.asarray(tiles):
    y0, y1 = int(r * h // tile_grid), int((r + 1) * h // tile_grid)
    x0, x1 = int(c * w // tile_grid), int((c + 1) * w // tile_grid)
    crop = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
    out.append(np.asarray(crop.resize((out_size, out_size), Image.BILINEAR)))
  return np.stack(out).astype(np.uint8)
