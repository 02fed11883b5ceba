r"""Writes a PNG of N images with their DRIS complexity map overlaid and the bucket each one gets.

  python -m rsvlm_jax.tools.dris_preview --config=configs/demo.py:dris=True --workdir=workdir/dris \
      --out=dris_preview.png --num=12 --split=test

The thresholds are the run's own (calibrated on the training split for the config's budget and cached
in WORKDIR/dris/), so the picture shows exactly the buckets that training and evaluation use.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
from PIL import Image, ImageDraw

from rsvlm_jax.dris import buckets as buckets_lib
from rsvlm_jax.dris import complexity


def _define_flags():
  """Flags are defined only when run as a command, so importing this module never collides with main's."""
  flags_ = {
      "config": config_flags.DEFINE_config_file("config", None, "Run config (file.py[:args]).", lock_config=True),
      "workdir": flags.DEFINE_string("workdir", None, "Run directory (DRIS thresholds are read from / cached in it)."),
      "out": flags.DEFINE_string("out", "dris_preview.png", "PNG to write."),
      "num": flags.DEFINE_integer("num", 12, "Number of images.", lower_bound=1),
      "split": flags.DEFINE_string("split", "test", "Split to draw from."),
      "tile": flags.DEFINE_integer("tile", 192, "Size of each panel in px.", lower_bound=1),
      "cols": flags.DEFINE_integer("cols", 4, "Panels per row.", lower_bound=1),
  }
  flags.mark_flags_as_required(["config", "workdir"])
  return flags_


def overlay(image: np.ndarray, cmap: np.ndarray, size: int, alpha: float = 0.45) -> Image.Image:
  """The image resized to `size`, with the complexity map (0 = blue, 1 = red) blended over it."""
  base = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB").resize((size, size), Image.BILINEAR)
  heat = Image.fromarray((np.clip(cmap, 0, 1) * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
  h = np.asarray(heat, np.float32)[..., None] / 255.0
  colour = np.concatenate([h, np.zeros_like(h), 1.0 - h], -1) * 255.0
  out = (1 - alpha) * np.asarray(base, np.float32) + alpha * colour
  return Image.fromarray(out.astype(np.uint8))


def render(images, cmaps, labels, *, size: int = 192, cols: int = 4) -> Image.Image:
  """A grid of overlaid panels, each with a caption line under it."""
  rows = (len(images) + cols - 1) // cols
  line = 16
  canvas = Image.new("RGB", (cols * size, rows * (size + line)), "white")
  draw = ImageDraw.Draw(canvas)
  for i, (img, cm, lab) in enumerate(zip(images, cmaps, labels)):
    r, c = divmod(i, cols)
    canvas.paste(overlay(img, cm, size), (c * size, r * (size + line)))
    draw.text((c * size + 3, r * (size + line) + size + 2), lab, fill="black")
  return canvas


def check_out(out: str) -> None:
  """Fails early (SystemExit naming --out) if the PNG cannot be written: before any image is read."""
  folder = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(folder):
    raise SystemExit(f"dris_preview: --out={out}: folder {folder} does not exist")
  try:
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as e:
    raise SystemExit(f"dris_preview: --out={out}: cannot write in {folder}: {e.strerror or e}") from e


def main(argv, f):
  del argv
  check_out(f["out"].value)
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  config = f["config"].value
  workdir = os.path.abspath(f["workdir"].value)
  os.makedirs(workdir, exist_ok=True)
  pipe = pipeline_lib.InputPipeline(config, workdir)
  src = pipe.source(f["split"].value)
  n = min(f["num"].value, len(src))
  idx = np.linspace(0, len(src) - 1, n).astype(int)
  feats = pipe._source_info.features  # pylint: disable=protected-access
  scene_names = list(feats["scene"].names) if "scene" in feats and hasattr(feats["scene"], "names") else None
  images, cmaps, labels = [], [], []
  for i in idx:
    rec = pipe.record(f["split"].value, i)
    _, cmap = complexity.score_image(rec["image"], config.dris.score_size)
    score = pipe.image_scorer()(rec["image"])  # The run's own score (learned, if dris.scorer is set).
    bucket = int(buckets_lib.choose_bucket([score], pipe.thresholds)[0])
    res = pipe.buckets.resolutions[bucket]
    name = f" {scene_names[int(rec['scene'])]}" if scene_names and "scene" in rec else ""
    images.append(rec["image"])
    cmaps.append(cmap)
    labels.append(f"#{i} score {score:.3f} -> {res}px ({pipe.buckets.tokens[bucket]} tok){name}")
  render(images, cmaps, labels, size=f["tile"].value, cols=f["cols"].value).save(f["out"].value)
  logging.info("Wrote %s (%d images, thresholds %s, resolutions %s)", f["out"].value, n, pipe.thresholds.tolist(),
               list(pipe.buckets.resolutions))
  print("Wrote " + f["out"].value)


if __name__ == "__main__":
  _FLAGS = _define_flags()
  app.run(lambda argv: main(argv, _FLAGS))
