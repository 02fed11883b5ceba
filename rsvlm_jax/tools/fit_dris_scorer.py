r"""Fits the learned DRIS scorer from a trained run (the teacher) and writes it as one .npz.

  python -m rsvlm_jax.tools.fit_dris_scorer --config=configs/demo.py:res=128 --workdir=runs/fixed128 \
      --out=runs/fixed128/dris_scorer.npz [--low_res=64] [--max_images=1200]
  python -m rsvlm_jax.main --config=configs/demo.py:dris=True,scorer=runs/fixed128/dris_scorer.npz --workdir=...

--config/--workdir name the teacher exactly as it was trained (its newest checkpoint is restored; nothing
in its workdir is written). For each of the first --max_images training images the teacher's resolution
gain is measured (analysis/resolution_gain.py: loss with the image degraded to --low_res minus the loss at
full resolution), the scorer is fitted on a (1 - heldout) share and checked on the rest (Spearman rank
correlation, since only the order of scores sets the buckets), then refitted on all of them. Writes OUT,
OUT's .json report and OUT's _gains.npz (features and per-image losses, for refitting without the teacher).
"""
from __future__ import annotations

import json
import os

from absl import flags

from rsvlm_jax import config as config_lib
from rsvlm_jax.runtime import cli


def fit_from_run(config, workdir: str, out: str, *, low_res: int = 0, max_images: int = 0, split: str = "train",
                 native: bool = False, heldout: float = 0.2, seed: int = 0, hidden: int = 16,
                 fit_steps: int = 300) -> dict:
  """Measures the teacher's resolution gains, fits the scorer, saves it to `out`; returns the report."""
  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.analysis import scorer_fit  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(workdir)
  config = config_schema.gate(config)  # The config gate: this tool is where the run starts.
  teacher = loading.load_run(workdir, config)  # Its checkpoint, else the weights config.model_init names.
  # The data: this config's dataset and buckets, with the teacher's tokenizer (its run files, read only).
  pipe = teacher.input_pipeline(config)
  return scorer_fit.fit_scorer(teacher.model, teacher.params, pipe, out, score_size=int(config.dris.score_size),
                               low_res=low_res, max_images=max_images, split=split, native=native,
                               heldout=heldout, seed=seed, hidden=hidden, fit_steps=fit_steps,
                               teacher_workdir=workdir)


FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
config_lib.define_config_flag("config", "The teacher's config (file.py[:args]).", flag_values=FLAGS,
                              lock_config=False)
flags.DEFINE_string("workdir", None, "The teacher's run directory (read only).", flag_values=FLAGS)
flags.DEFINE_string("out", None, "Scorer .npz to write (a .json report goes next to it).", flag_values=FLAGS)
flags.DEFINE_integer("low_res", 0, "Degraded resolution (0 = half the teacher's largest; with --native and several "
                     "buckets, its smallest bucket).", flag_values=FLAGS)
flags.DEFINE_integer("max_images", 0, "Training images to measure (0 = all).", flag_values=FLAGS)
flags.DEFINE_string("split", "train", "Split to measure and fit on.", flag_values=FLAGS)
flags.DEFINE_bool("native", False, "Encode the low-resolution view at its own (smaller) token grid instead of "
                  "upsampling it back.", flag_values=FLAGS)
flags.DEFINE_float("heldout", 0.2, "Share of images held out to check the fit.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the split and the MLP init.", flag_values=FLAGS)
flags.DEFINE_integer("hidden", 16, "Hidden units of the scorer MLP.", flag_values=FLAGS)
flags.DEFINE_integer("fit_steps", 300, "Full-batch AdamW steps of each fit.", flag_values=FLAGS)
flags.mark_flags_as_required(["config", "workdir", "out"], flag_values=FLAGS)


def main(argv):
  del argv
  cli.check_output_file(FLAGS.out, "--out", new_folders=True)  # Before the teacher is loaded.
  report = fit_from_run(FLAGS.config, FLAGS.workdir, FLAGS.out, low_res=FLAGS.low_res, max_images=FLAGS.max_images,
                        split=FLAGS.split, native=FLAGS.native, heldout=FLAGS.heldout, seed=FLAGS.seed,
                        hidden=FLAGS.hidden, fit_steps=FLAGS.fit_steps)
  print(json.dumps(report, indent=2))


if __name__ == "__main__":
  cli.run(main, FLAGS, "fit_dris_scorer")
