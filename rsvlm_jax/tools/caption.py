r"""Caption every image of a folder (or glob) with a trained model: one JSON line per file.

  python -m rsvlm_jax.tools.caption --model RUN_OR_DIR --images /data/scenes --out captions.jsonl \
      [--dris] [--beam 4] [--bands 4,3,2] [--batch 16] [--sheet captions.png]

Each line is {"image": path, "caption": str}, or {"image": path, "error": str} for a file that cannot be
read (named in the log and counted in the summary); lines follow the sorted file order and are written
chunk by chunk, so a long run's output grows as it goes. Exit status 0 unless no file could be captioned.
Images are read by rsvlm_jax/data/image_io.py: JPEG, PNG, TIFF/GeoTIFF, 8/16-bit and float, any number of
bands (--bands picks three, counted from 1; data of more than 8 bits gets a 2-98 percentile stretch).
--dris encodes each image at the bucket its DRIS score picks (a run trained or served with DRIS buckets).
"""
from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from rsvlm_jax.data import image_io
from rsvlm_jax.runtime import progress as progress_lib

FLAGS = flags.FLAGS


def caption_files(model, files: list[str], out_path: str, *, beam: int = 0, dris: bool = False, batch: int = 16,
                  chunk: int = 64, sheet: str = "", sheet_size: int = 16) -> dict[str, int]:
  """Captions `files` into the JSONL `out_path` (and the first `sheet_size` captioned images with their
  captions into the PNG `sheet`); returns {"captioned", "failed"}."""
  counts = {"captioned": 0, "failed": 0}
  shown: tuple[list, list] = ([], [])
  progress = progress_lib.ItemProgress(len(files), "caption")
  os.makedirs(os.path.dirname(os.path.abspath(out_path)) or ".", exist_ok=True)
  with open(out_path + ".partial", "w", encoding="utf-8") as out:
    for start in range(0, len(files), chunk):
      rows, images = [], []
      for path in files[start:start + chunk]:
        try:
          images.append(model.read(path))
          rows.append({"image": path})
        except (image_io.ImageReadError, ValueError) as e:
          logging.warning("Skipping %s: %s", path, e)
          rows.append({"image": path, "error": str(e)})
          counts["failed"] += 1
      captions = iter(model.caption(images, beam=beam, batch_size=batch, dris=dris) if images else [])
      pixels = iter(images)
      for row in rows:
        if "error" not in row:
          row["caption"] = next(captions)
          counts["captioned"] += 1
          image = next(pixels)
          if sheet and len(shown[0]) < sheet_size:
            shown[0].append(image)
            shown[1].append(row["caption"])
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
      out.flush()
      progress.update(min(start + chunk, len(files)))
  os.replace(out_path + ".partial", out_path)
  if sheet and shown[0]:
    from rsvlm_jax.tools import plots  # pylint: disable=g-import-not-at-top
    plots.captioned_sheet_png(*shown, sheet)
    logging.info("Wrote %s (%d captioned images)", sheet, len(shown[0]))
  return counts


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import rsvlm_jax  # pylint: disable=g-import-not-at-top
  try:
    files = image_io.expand_images(FLAGS.images)
    model = rsvlm_jax.load(FLAGS.model)
    model.read_options = image_io.ReadOptions(bands=image_io.parse_bands(FLAGS.bands), max_pixels=FLAGS.max_pixels,
                                              max_side=FLAGS.max_side)
    if not model.has_decoder:
      raise ValueError(f"--model {FLAGS.model} has no caption decoder (fine-tune one with configs/clip_finetune.py)")
    if FLAGS.beam < 0 or FLAGS.batch < 1:
      raise ValueError("--beam must be >= 0 and --batch >= 1")
    counts = caption_files(model, files, FLAGS.out, beam=FLAGS.beam, dris=FLAGS.dris, batch=FLAGS.batch,
                           sheet=FLAGS.sheet)
  except (FileNotFoundError, ValueError) as e:
    print(f"caption: error: {e}", file=sys.stderr)
    sys.exit(2)
  logging.info("Captioned %d of %d images into %s; %d could not be read (their lines carry \"error\")",
               counts["captioned"], len(files), FLAGS.out, counts["failed"])
  if not counts["captioned"]:
    print(f"caption: error: none of the {len(files)} images could be captioned", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  flags.DEFINE_string("model", None, "A trained workdir or a fine-tuned converted model (rsvlm_jax.load).")
  flags.DEFINE_string("images", None, "A directory (searched recursively) or a glob pattern of image files.")
  flags.DEFINE_string("out", None, "Output JSONL file.")
  flags.DEFINE_bool("dris", False, "Encode each image at its DRIS bucket (the run's calibrated thresholds).")
  flags.DEFINE_integer("beam", 0, "Beam size (0 or 1: greedy).")
  flags.DEFINE_string("sheet", "", "Also draw the first 16 captioned images with their captions into this PNG.")
  flags.DEFINE_integer("batch", 16, "Images per batch.")
  flags.DEFINE_string("bands", "", "Bands to use as RGB, 1-based, e.g. 4,3,2 (default: the first three).")
  flags.DEFINE_integer("max_pixels", 100_000_000, "Larger scenes are refused unless decodable at reduced scale.")
  flags.DEFINE_integer("max_side", 4096, "Scenes are reduced to this longer side before preprocessing.")
  flags.mark_flags_as_required(["model", "images", "out"])
  app.run(main)
