r"""Entry point: `python -m rsvlm_jax.main --config=configs/demo.py[:args] --workdir=DIR [--mode=...]`.

Modes: train (train only), eval (evaluate the latest checkpoint), train_and_eval (default).
Restarting with the same workdir resumes from the newest checkpoint.
"""
from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (file.py[:args]).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the run record.")
_MODE = flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"], "What to run.")
flags.mark_flags_as_required(["config", "workdir"])


def run(config, workdir: str, mode: str = "train_and_eval") -> dict:
  """Runs a job programmatically (used by tests, sweeps and benchmarks); returns the final metrics."""
  # Imported here so `--help` and flag errors stay fast.
  from rsvlm_jax import distributed  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.evaluate import report  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  distributed.maybe_initialize(config.get("distributed"))
  workdir = os.path.abspath(os.path.expanduser(workdir))
  trainer = trainer_lib.Trainer(config, workdir)
  summary = {}
  if mode in ("train", "train_and_eval"):
    summary = trainer.train()
    if summary.get("preempted"):
      return {"preempted": True}
  elif trainer.restore() is None:
    raise FileNotFoundError(f"--mode=eval needs a checkpoint in {os.path.join(workdir, 'checkpoints')}")
  if mode == "train":
    return summary
  results = trainer.evaluate()
  metrics = report.build(results, len(trainer.pipe.source(config.evals.retrieval.get("split", "test"))
                                      if "retrieval" in config.evals else []),
                         int(jax.device_get(trainer.state.step)))
  metrics["compilations"] = trainer.tracker.summary()
  metrics["train"] = summary
  path = report.write(workdir, metrics)
  if jax.process_index() == 0:
    print(report.table(metrics), flush=True)
    logging.info("Wrote %s", path)
  return metrics


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  run(_CONFIG.value, _WORKDIR.value, _MODE.value)


def _fail_on_unknown_override(argv: list[str]) -> None:
  """Exits naming the key when a --config.KEY=VALUE override names no key of the config."""
  from rsvlm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  spec = config_lib.config_spec_from_argv(argv)
  if not spec or not any(a.startswith("--config.") for a in argv):
    return
  try:
    config = config_lib.load_config(spec)
  except Exception:  # pylint: disable=broad-except
    return  # A broken config file is reported by the normal flag parsing, with its traceback.
  message = config_lib.unknown_override(config, argv)
  if message:
    sys.exit(f"main: {message}")


if __name__ == "__main__":
  _fail_on_unknown_override(sys.argv)
  app.run(main)
