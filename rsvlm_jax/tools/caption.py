r"""Caption every image of a folder (or glob) with a trained model: one JSON line per file.

  python -m rsvlm_jax.tools.caption --model RUN_OR_DIR --images /data/scenes --out captions.jsonl \
      [--dris] [--beam 4] [--bands 4,3,2] [--batch 16] [--sheet captions.png]

Each line is {"image": path, "caption": str, "resolution": px}, or {"image": path, "error": str} for a file
that cannot be read (named in the log and counted in the summary); lines follow the sorted file order.
Exit status 0 unless no file could be captioned; 2 for bad flags or paths (checked before the model loads).
Images are read by rsvlm_jax/data/image_io.py: JPEG, PNG, TIFF/GeoTIFF, 8/16-bit and float, any number of
bands (--bands picks three, counted from 1; data of more than 8 bits gets a 2-98 percentile stretch).
--dris encodes each image at the bucket its DRIS score picks (a run trained or served with DRIS buckets).

Lines are written chunk by chunk into OUT.partial (its settings in OUT.partial.json); OUT itself appears
only at the end, in one atomic rename. A run that was stopped (Ctrl-C, kill -9, a crash) resumes from the
finished lines of OUT.partial when run again with the same model, image list and options (--noresume starts
over). While a run is under way an older OUT is kept as OUT.previous, so that no file named OUT looks
current before the run completes (OUT.previous is removed at the end).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys

from absl import flags
from absl import logging

from rsvlm_jax.data import image_io
from rsvlm_jax.runtime import cli
from rsvlm_jax.runtime import progress as progress_lib

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
flags.DEFINE_string("model", None, "A trained workdir or a fine-tuned converted model (rsvlm_jax.load).",
                    flag_values=FLAGS)
flags.DEFINE_string("images", None, "A directory (searched recursively) or a glob pattern of image files.",
                    flag_values=FLAGS)
flags.DEFINE_string("out", None, "Output JSONL file (written as OUT.partial, renamed to OUT at the end).",
                    flag_values=FLAGS)
flags.DEFINE_bool("dris", False, "Encode each image at its DRIS bucket (the run's calibrated thresholds).",
                  flag_values=FLAGS)
flags.DEFINE_integer("beam", 0, "Beam size (0 or 1: greedy).", flag_values=FLAGS)
flags.DEFINE_string("sheet", "", "Also draw the first 16 captioned images with their captions into this PNG.",
                    flag_values=FLAGS)
flags.DEFINE_integer("batch", 16, "Images per batch.", flag_values=FLAGS)
flags.DEFINE_string("bands", "", "Bands to use as RGB, 1-based, e.g. 4,3,2 (default: the first three).",
                    flag_values=FLAGS)
flags.DEFINE_integer("max_pixels", 100_000_000, "Larger scenes are refused unless decodable at reduced scale.",
                     flag_values=FLAGS)
flags.DEFINE_integer("max_side", 4096, "Scenes are reduced to this longer side before preprocessing (at least "
                     "the model's smallest input size).", flag_values=FLAGS)
flags.DEFINE_bool("resume", True, "Resume from the finished lines of OUT.partial left by a stopped run "
                  "(same model, images and options); --noresume starts over.", flag_values=FLAGS)
flags.mark_flags_as_required(["model", "images", "out"], flag_values=FLAGS)


def prepare(model: str, images: str, out: str, *, sheet: str = "", bands: str = "", beam: int = 0,
            batch: int = 16, max_side: int = 4096, max_pixels: int = 100_000_000
            ) -> tuple[list[str], image_io.ReadOptions]:
  """(files, read options): every check that can fail before the model loads (flags, output paths, the
  model's config.json, the image list); raises cli.UserError (or ValueError / FileNotFoundError) naming it."""
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  if beam < 0:
    raise cli.UserError(f"--beam={beam}: expected 0 or 1 (greedy) or a beam size > 1")
  if batch < 1:
    raise cli.UserError(f"--batch={batch}: expected a batch size >= 1")
  if max_pixels < 1:
    raise cli.UserError(f"--max_pixels={max_pixels}: expected a positive pixel count")
  cli.check_output_file(out, "--out")
  if sheet:
    cli.check_output_file(sheet, "--sheet")
    if os.path.abspath(sheet) == os.path.abspath(out):
      raise cli.UserError(f"--sheet={sheet} is the --out file; give the PNG another name")
  config = loading.read_config(loading.model_root(model))
  smallest = min(int(r) for r in config.dris.resolutions)
  if max_side < smallest:
    raise cli.UserError(f"--max_side={max_side}: below the model's smallest input size ({smallest} px); "
                        f"images read smaller would only be enlarged again (give >= {smallest}; default 4096)")
  if config.model.decoder is None:
    raise cli.UserError(f"--model {model} has no caption decoder (fine-tune one with configs/clip_finetune.py)")
  options = image_io.ReadOptions(bands=image_io.parse_bands(bands), max_pixels=max_pixels, max_side=max_side)
  return image_io.expand_images(images), options


def run_settings(model, files: list[str], beam: int, dris: bool) -> dict:
  """What the lines of a run depend on: a .partial written with other settings is not resumed."""
  return {"model": model.directory, "step": int(model.step), "beam": int(beam), "dris": bool(dris),
          "read_options": json.loads(json.dumps(dataclasses.asdict(model.read_options))),
          "num_files": len(files)}


def resumable_lines(partial: str, files: list[str], settings: dict) -> list[str]:
  """The finished lines of `partial` that a run over `files` with `settings` can keep: written with the same
  settings (PARTIAL.json), each a complete JSON line for files[i] in order; a torn last line, or any line
  from the first that does not match, and all after it, are dropped (and counted in the log)."""
  try:
    with open(partial + ".json", encoding="utf-8") as f:
      saved = json.load(f)
    with open(partial, "rb") as f:
      data = f.read()
  except (OSError, ValueError):
    return []
  if saved != settings:
    logging.info("Not resuming from %s: it was written with other settings (%s)", partial,
                 ", ".join(k for k in settings if saved.get(k) != settings[k]) if isinstance(saved, dict) else "?")
    return []
  lines = data.split(b"\n")
  kept = []
  for i, raw in enumerate(lines[:-1]):  # The last piece has no newline: empty, or a torn line.
    try:
      row = json.loads(raw.decode("utf-8"))
    except ValueError:
      break
    if (i >= len(files) or not isinstance(row, dict) or row.get("image") != files[i]
        or not ("caption" in row or "error" in row)):
      break
    kept.append(raw.decode("utf-8") + "\n")
  dropped = len([x for x in lines if x]) - len(kept)
  if dropped:
    logging.warning("%s: dropped %d torn or unmatched line(s) after the %d finished ones", partial, dropped,
                    len(kept))
  return kept


def _retire_previous(out_path: str) -> None:
  """An existing OUT -> OUT.previous (removed once this run completes), so that OUT never looks current."""
  if os.path.isfile(out_path):
    os.replace(out_path, out_path + ".previous")
    logging.info("Moved the existing %s to %s until this run completes", out_path, out_path + ".previous")


def caption_files(model, files: list[str], out_path: str, *, beam: int = 0, dris: bool = False, batch: int = 16,
                  chunk: int = 64, sheet: str = "", sheet_size: int = 16, resume: bool = True) -> dict[str, int]:
  """Captions `files` into the JSONL `out_path` (and the first `sheet_size` captioned images with their
  captions into the PNG `sheet`); returns {"captioned", "failed"} (resumed lines included). See the module
  doc for OUT.partial, resuming (`resume`) and OUT.previous."""
  counts = {"captioned": 0, "failed": 0}
  shown: tuple[list, list, list] = ([], [], [])
  partial = out_path + ".partial"
  settings = run_settings(model, files, beam, dris)
  done = resumable_lines(partial, files, settings) if resume else []
  if done:
    logging.info("Resuming from %s: %d of %d images already done", partial, len(done), len(files))
  _retire_previous(out_path)
  if os.path.exists(partial):  # Cut to the kept lines first, then say which settings wrote them.
    os.truncate(partial, sum(len(line.encode("utf-8")) for line in done))
  with open(partial + ".json", "w", encoding="utf-8") as f:
    json.dump(settings, f)
  for line in done:
    row = json.loads(line)
    counts["captioned" if "caption" in row else "failed"] += 1
    if sheet and "caption" in row and len(shown[0]) < sheet_size:
      _show(model, row, shown)
  progress = progress_lib.ItemProgress(len(files), "caption")
  with open(partial, "a", encoding="utf-8") as out:
    for start in range(len(done), len(files), chunk):
      rows = _caption_chunk(model, files[start:start + chunk], beam, dris, batch, counts)
      for row, image in rows:
        if image is not None and sheet and len(shown[0]) < sheet_size:
          shown[0].append(image)
          shown[1].append(row["caption"])
          shown[2].append(row)
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
      out.flush()
      progress.update(min(start + chunk, len(files)))
  os.replace(partial, out_path)
  for leftover in (partial + ".json", out_path + ".previous"):
    if os.path.exists(leftover):
      os.remove(leftover)
  if sheet and shown[0]:
    from rsvlm_jax import plots  # pylint: disable=g-import-not-at-top
    labels = [plots.sheet_label(r["image"], r.get("resolution")) for r in shown[2]]
    plots.captioned_sheet_png(shown[0], shown[1], sheet, labels=labels)
    logging.info("Wrote %s (%d captioned images)", sheet, len(shown[0]))
  return counts


def _caption_chunk(model, files: list[str], beam: int, dris: bool, batch: int, counts: dict) -> list[tuple]:
  """[(row, image or None)] of `files`: read, bucketed and captioned; unreadable files get an error row."""
  rows, images = [], []
  for path in files:
    try:
      images.append(model.read(path))
      rows.append({"image": path})
    except (image_io.ImageReadError, ValueError) as e:
      logging.warning("Skipping %s: %s", path, e)
      rows.append({"image": path, "error": str(e)})
      counts["failed"] += 1
  res = model.input_resolutions(images, dris=dris) if images else []
  captions = iter(model.caption(images, beam=beam, batch_size=batch, resolution=res) if images else [])
  pixels, sizes = iter(images), iter(res)
  out = []
  for row in rows:
    image = None
    if "error" not in row:
      row["caption"], row["resolution"], image = next(captions), int(next(sizes)), next(pixels)
      counts["captioned"] += 1
    out.append((row, image))
  return out


def _show(model, row: dict, shown: tuple[list, list, list]) -> None:
  """Adds a resumed row's image to the sheet (read again; one that no longer reads is left out)."""
  try:
    image = model.read(row["image"])
  except (image_io.ImageReadError, ValueError, OSError):
    return
  shown[0].append(image)
  shown[1].append(row["caption"])
  shown[2].append(row)


def main(argv):
  del argv
  import rsvlm_jax  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import library_logs  # pylint: disable=g-import-not-at-top
  library_logs.quiet_library_logs()
  files, options = prepare(FLAGS.model, FLAGS.images, FLAGS.out, sheet=FLAGS.sheet, bands=FLAGS.bands,
                           beam=FLAGS.beam, batch=FLAGS.batch, max_side=FLAGS.max_side, max_pixels=FLAGS.max_pixels)
  model = rsvlm_jax.load(FLAGS.model)
  model.read_options = options
  counts = caption_files(model, files, FLAGS.out, beam=FLAGS.beam, dris=FLAGS.dris, batch=FLAGS.batch,
                         sheet=FLAGS.sheet, resume=FLAGS.resume)
  logging.info("Captioned %d of %d images into %s; %d could not be read (their lines carry \"error\")",
               counts["captioned"], len(files), FLAGS.out, counts["failed"])
  if not counts["captioned"]:
    print(f"caption: error: none of the {len(files)} images could be captioned", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  cli.run(main, FLAGS, "caption")
