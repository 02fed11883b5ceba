r"""Zero-shot scene classification of a labelled image set, the way RemoteCLIP and GeoRSCLIP are evaluated.

  python -m rsvlm_jax.tools.zero_shot --model DIR --dataset folder:/data/AID --templates georsclip --out aid.json
  python -m rsvlm_jax.tools.zero_shot --model DIR --dataset tfds:eurosat/rgb --data_dir /data/tfds \
      --templates remoteclip --out eurosat.json

--dataset: folder:PATH (class subfolders: AID, WHU-RS19, RSSCN7, PatternNet) or tfds:NAME (uc_merced,
eurosat/rgb, resisc45, built with TFDS into --data_dir). --templates: remoteclip, georsclip, openai or a FILE
(one template per line with "{}"). Writes the JSON {"top1", "top5", "per_class": {...}, "per_image": [{"image",
"label", "pred"}], ...} and a confusion-matrix PNG (--confusion, default: the --out path with .png).
"""
from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from rsvlm_jax.data import image_io
from rsvlm_jax.evaluate import zero_shot
from rsvlm_jax.evaluate import zero_shot_templates
from rsvlm_jax.tools import plots
from rsvlm_jax.runtime import progress as progress_lib

FLAGS = flags.FLAGS


def run(model, dataset_spec: str, templates: str, out: str, *, confusion: str = "", data_dir: str = "",
        split: str = "", batch: int = 64, limit: int = 0, label_key: str = "label") -> dict:
  """Evaluates `model` (rsvlm_jax.load) and writes `out` (JSON) and the confusion PNG; returns the result."""
  temps = zero_shot_templates.load(templates)
  data = zero_shot.dataset(dataset_spec, data_dir, split, label_key)
  if limit:
    keep = slice(0, limit)
    data = zero_shot.LabelledImages(data.classnames, data.labels[keep], data.ids[keep], data.load)
  logging.info("Zero-shot: %d images, %d classes, %d templates (%s)", len(data.labels), len(data.classnames),
               len(temps), templates)
  progress = progress_lib.ItemProgress(len(data.labels), "zero-shot")
  result = zero_shot.evaluate(lambda items: model.encode_images(items, batch_size=batch), model.encode_texts, data,
                              temps, batch_size=batch, progress=progress.update)
  result.update(dataset=dataset_spec, templates=templates, model=model.directory)
  os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1, ensure_ascii=False)
  confusion = confusion or os.path.splitext(out)[0] + ".png"
  plots.confusion_matrix_png(result["confusion"], data.classnames, confusion,
                             title=f"{dataset_spec}  top-1 {result['top1']:.2f}%")
  logging.info("top-1 %.2f%%, top-5 %.2f%% over %d images -> %s, %s", result["top1"], result["top5"],
               result["num_images"], out, confusion)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import rsvlm_jax  # pylint: disable=g-import-not-at-top
  try:
    model = rsvlm_jax.load(FLAGS.model)
    model.read_options = image_io.ReadOptions(bands=image_io.parse_bands(FLAGS.bands))
    result = run(model, FLAGS.dataset, FLAGS.templates, FLAGS.out, confusion=FLAGS.confusion,
                 data_dir=FLAGS.data_dir, split=FLAGS.split, batch=FLAGS.batch, limit=FLAGS.limit,
                 label_key=FLAGS.label_key)
  except (FileNotFoundError, ValueError) as e:
    print(f"zero_shot: error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  ({result['num_images']} images)")


if __name__ == "__main__":
  flags.DEFINE_string("model", None, "A trained workdir or a converted open_clip directory (rsvlm_jax.load).")
  flags.DEFINE_string("dataset", None, "folder:PATH or tfds:NAME.")
  flags.DEFINE_string("templates", "remoteclip", "remoteclip, georsclip, openai, or a file of templates.")
  flags.DEFINE_string("out", None, "Output JSON.")
  flags.DEFINE_string("confusion", "", "Confusion-matrix PNG (default: --out with .png).")
  flags.DEFINE_string("data_dir", "", "TFDS data_dir for tfds: datasets.")
  flags.DEFINE_string("split", "", "TFDS split (default: test if there is one, else the first).")
  flags.DEFINE_string("label_key", "label", "The ClassLabel feature of a tfds: dataset (e.g. scene).")
  flags.DEFINE_integer("batch", 64, "Images per batch.")
  flags.DEFINE_integer("limit", 0, "Only the first N images (0: all).")
  flags.DEFINE_string("bands", "", "Bands to use as RGB for multi-band files, 1-based, e.g. 4,3,2.")
  flags.mark_flags_as_required(["model", "dataset", "out"])
  app.run(main)
