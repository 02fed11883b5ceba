r"""Zero-shot scene classification of a labelled image set, the way RemoteCLIP and GeoRSCLIP are evaluated.

  python -m rsvlm_jax.tools.zero_shot --model DIR --dataset folder:/data/AID --templates rs_ensemble --out aid.json
  python -m rsvlm_jax.tools.zero_shot --model DIR --dataset tfds:eurosat/rgb --data_dir /data/tfds \
      --templates remoteclip --out eurosat.json

--dataset: folder:PATH (class subfolders: AID, WHU-RS19, RSSCN7, PatternNet; hidden folders are skipped, a
class folder without images is refused unless --empty_classes) or tfds:NAME (uc_merced, eurosat/rgb, resisc45,
built beforehand into --data_dir: nothing is downloaded). --templates: remoteclip, rs_ensemble (this project's
own ensemble; "georsclip" is its deprecated name), openai or a FILE (UTF-8, one template per line with exactly
one "{}"). Writes the JSON {"top1", "top5", "mean_per_class_recall", "per_class": {...}, "per_image": [{"image",
"label", "pred"}], "notes", ...} (top5 is null with <= 5 classes, where it is always 100%) and a
confusion-matrix PNG (--confusion, default: the --out path with .png). Inputs and output paths are checked
before the model loads; a bad one is one line on stderr and exit status 2.
"""
from __future__ import annotations

import dataclasses
import json
import os

from absl import flags
from absl import logging

from rsvlm_jax import plots
from rsvlm_jax.data import image_io
from rsvlm_jax.evaluate import zero_shot
from rsvlm_jax.evaluate import zero_shot_templates
from rsvlm_jax.runtime import cli
from rsvlm_jax.runtime import progress as progress_lib
from rsvlm_jax.runtime.library_logs import quiet_library_logs

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
flags.DEFINE_string("model", None, "A trained workdir or a converted open_clip directory (rsvlm_jax.load).",
                    flag_values=FLAGS)
flags.DEFINE_string("dataset", None, "folder:PATH (one subfolder per class) or tfds:NAME (built into --data_dir).",
                    flag_values=FLAGS)
flags.DEFINE_string("templates", "remoteclip",
                    "remoteclip, rs_ensemble (this project's own 100-template ensemble; 'georsclip' is its "
                    "deprecated name), openai, or a FILE: UTF-8, one template per line ('#' lines are comments), "
                    "each with exactly one '{}' for the class name; literal braces doubled as '{{' and '}}'.",
                    flag_values=FLAGS)
flags.DEFINE_string("out", None, "Output JSON.", flag_values=FLAGS)
flags.DEFINE_string("confusion", "", "Confusion-matrix PNG (default: --out with .png).", flag_values=FLAGS)
flags.DEFINE_string("data_dir", "", "TFDS data_dir for tfds: datasets (default: TFDS's, ~/tensorflow_datasets).",
                    flag_values=FLAGS)
flags.DEFINE_string("split", "", "TFDS split (default: test if there is one, else the first).", flag_values=FLAGS)
flags.DEFINE_string("label_key", "label", "The ClassLabel feature of a tfds: dataset (e.g. scene).",
                    flag_values=FLAGS)
flags.DEFINE_enum("empty_classes", "error", list(zero_shot.EMPTY_CLASSES),
                  "A folder: class folder without images: error (refuse), drop (leave it out of the label set, "
                  "as if the folder were absent) or keep (a class no image has, competing in the argmax).",
                  flag_values=FLAGS)
flags.DEFINE_integer("batch", 64, "Images per batch.", flag_values=FLAGS)
flags.DEFINE_integer("limit", 0, "Only the first N images (0: all).", flag_values=FLAGS)
flags.DEFINE_string("bands", "", "Bands to use as RGB for multi-band files, 1-based, e.g. 4,3,2.", flag_values=FLAGS)
flags.mark_flags_as_required(["model", "dataset", "out"], flag_values=FLAGS)


@dataclasses.dataclass
class Inputs:
  """What an evaluation needs besides the model, all checked: images, templates and the output paths."""
  dataset_spec: str
  data: zero_shot.LabelledImages
  templates_name: str
  templates: list[str]
  out: str
  confusion: str


def prepare(dataset_spec: str, templates: str, out: str, *, confusion: str = "", data_dir: str = "",
            split: str = "", limit: int = 0, label_key: str = "label", empty_classes: str = "error") -> Inputs:
  """Checks the output paths, reads the templates and lists the images: all that can fail before the model loads."""
  if limit < 0:
    raise cli.UserError(f"--limit={limit}: expected 0 (all images) or a positive count")
  cli.check_output_file(out, "--out", new_folders=True)  # Missing folders are created when writing.
  confusion = confusion or os.path.splitext(out)[0] + ".png"
  cli.check_output_file(confusion, "--confusion", new_folders=True)
  if os.path.abspath(confusion) == os.path.abspath(out):
    raise cli.UserError(f"--confusion={confusion} is the --out file; give the PNG another name")
  temps = zero_shot_templates.load(templates)
  data = zero_shot.dataset(dataset_spec, data_dir, split, label_key, empty_classes)
  if limit:
    data = dataclasses.replace(data, labels=data.labels[:limit], ids=data.ids[:limit])
  return Inputs(dataset_spec, data, zero_shot_templates.canonical_name(templates), temps, out, confusion)


def evaluate(model, inputs: Inputs, *, batch: int = 64) -> dict:
  """Evaluates `model` (rsvlm_jax.load) on `inputs`, writes the JSON and the confusion PNG; returns the result."""
  data = inputs.data
  logging.info("Zero-shot: %d images, %d classes, %d templates (%s)", len(data.labels), len(data.classnames),
               len(inputs.templates), inputs.templates_name)
  progress = progress_lib.ItemProgress(len(data.labels), "zero-shot")
  result = zero_shot.evaluate(lambda items: model.encode_images(items, batch_size=batch), model.encode_texts, data,
                              inputs.templates, batch_size=batch, progress=progress.update)
  result.update(dataset=inputs.dataset_spec, templates=inputs.templates_name, model=model.directory)
  for path in (inputs.out, inputs.confusion):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(inputs.out, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1, ensure_ascii=False)
  plots.confusion_matrix_png(result["confusion"], data.classnames, inputs.confusion, title=title(result))
  for note in result["notes"][len(data.notes):]:  # The dataset's own were logged when it was listed.
    logging.warning("Zero-shot: %s", note)
  logging.info("%s -> %s, %s", summary(result), inputs.out, inputs.confusion)
  return result


def run(model, dataset_spec: str, templates: str, out: str, *, confusion: str = "", data_dir: str = "",
        split: str = "", batch: int = 64, limit: int = 0, label_key: str = "label",
        empty_classes: str = "error") -> dict:
  """prepare + evaluate: evaluates `model` and writes `out` (JSON) and the confusion PNG; returns the result."""
  inputs = prepare(dataset_spec, templates, out, confusion=confusion, data_dir=data_dir, split=split, limit=limit,
                   label_key=label_key, empty_classes=empty_classes)
  return evaluate(model, inputs, batch=batch)


def title(result: dict) -> str:
  """The confusion PNG's title, e.g. "folder:/data/AID | top-1: 85.00% | 600 images, 30 classes"."""
  return (f"{result['dataset']} | top-1: {result['top1']:.2f}% | {result['num_images']} images, "
          f"{result['num_classes']} classes")


def summary(result: dict) -> str:
  top5 = "n/a" if result["top5"] is None else f"{result['top5']:.2f}%"
  return (f"top-1 {result['top1']:.2f}%  top-5 {top5}  mean per-class recall {result['mean_per_class_recall']:.2f}%"
          f"  ({result['num_images']} images, {result['num_classes']} classes)")


def main(argv):
  del argv
  quiet_library_logs()
  if FLAGS.batch <= 0:
    raise cli.UserError(f"--batch={FLAGS.batch}: expected a positive number of images per batch")
  read_options = image_io.ReadOptions(bands=image_io.parse_bands(FLAGS.bands))
  inputs = prepare(FLAGS.dataset, FLAGS.templates, FLAGS.out, confusion=FLAGS.confusion, data_dir=FLAGS.data_dir,
                   split=FLAGS.split, limit=FLAGS.limit, label_key=FLAGS.label_key, empty_classes=FLAGS.empty_classes)
  import rsvlm_jax  # pylint: disable=g-import-not-at-top
  model = rsvlm_jax.load(FLAGS.model)
  model.read_options = read_options
  result = evaluate(model, inputs, batch=FLAGS.batch)
  print(summary(result))


if __name__ == "__main__":
  cli.run(main, FLAGS, "zero_shot")
