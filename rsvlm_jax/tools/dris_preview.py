r"""Writes a PNG of N images with their DRIS complexity map overlaid and the bucket each one gets.

  python -m rsvlm_jax.tools.dris_preview --config=configs/demo.py:dris=True --workdir=workdir/dris \
      --out=dris_preview.png --num=12 --split=test

The thresholds are the run's own (calibrated on the training split for the config's budget and cached
in WORKDIR/dris/), so the picture shows exactly the buckets that training and evaluation use.
"""
from __future__ import annotations

import os

import numpy as np
from absl import flags
from absl import logging
from PIL import Image, ImageDraw

from rsvlm_jax import config as config_lib
from rsvlm_jax.dris import buckets as buckets_lib
from rsvlm_jax.dris import complexity
from rsvlm_jax.runtime import cli

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
config_lib.define_config_flag("config", "Run config (file.py[:args]).", flag_values=FLAGS, lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (DRIS thresholds are read from / cached in it).",
                    flag_values=FLAGS)
flags.DEFINE_string("out", "dris_preview.png", "PNG to write.", flag_values=FLAGS)
flags.DEFINE_integer("num", 12, "Number of images.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_string("split", "test", "Split to draw from.", flag_values=FLAGS)
flags.DEFINE_integer("tile", 192, "Size of each panel in px.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("cols", 4, "Panels per row.", lower_bound=1, flag_values=FLAGS)
flags.mark_flags_as_required(["config", "workdir"], flag_values=FLAGS)


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


def main(argv):
  del argv
  cli.check_output_file(FLAGS.out, "--out")  # Before any image is read.
  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  config = config_schema.gate(FLAGS.config)  # The config gate: this tool is where the run starts.
  split = FLAGS.split
  workdir = os.path.abspath(FLAGS.workdir)
  os.makedirs(workdir, exist_ok=True)
  pipe = pipeline_lib.InputPipeline(config, workdir)
  src = pipe.source(split)
  n = min(FLAGS.num, len(src))
  idx = np.linspace(0, len(src) - 1, n).astype(int)
  feats = pipe._source_info.features  # pylint: disable=protected-access
  scene_names = list(feats["scene"].names) if "scene" in feats and hasattr(feats["scene"], "names") else None
  images, cmaps, labels = [], [], []
  for i in idx:
    rec = pipe.record(split, i)
    _, cmap = complexity.score_image(rec["image"], config.dris.score_size)
    score = pipe.image_scorer()(rec["image"])  # The run's own score (learned, if dris.scorer is set).
    bucket = int(buckets_lib.choose_bucket([score], pipe.thresholds)[0])
    res = pipe.buckets.resolutions[bucket]
    name = f" {scene_names[int(rec['scene'])]}" if scene_names and "scene" in rec else ""
    images.append(rec["image"])
    cmaps.append(cmap)
    labels.append(f"#{i} score {score:.3f} -> {res}px ({pipe.buckets.tokens[bucket]} tok){name}")
  render(images, cmaps, labels, size=FLAGS.tile, cols=FLAGS.cols).save(FLAGS.out)
  logging.info("Wrote %s (%d images, thresholds %s, resolutions %s)", FLAGS.out, n, pipe.thresholds.tolist(),
               list(pipe.buckets.resolutions))
  print("Wrote " + FLAGS.out)


if __name__ == "__main__":
  cli.run(main, FLAGS, "dris_preview")
