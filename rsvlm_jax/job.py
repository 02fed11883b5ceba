"""One job — train, evaluate, write metrics.json — callable from Python without any command-line flags.

`rsvlm_jax.main` is the command-line front end; sweeps, benchmarks and tests call `run` here, so
importing this module never defines absl flags that could clash with the caller's own.
"""
from __future__ import annotations

import os

from absl import logging


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
  elif not trainer.restore_or_init():
    raise FileNotFoundError(f"--mode=eval needs a checkpoint in {os.path.join(workdir, 'checkpoints')} "
                            "or config.model_init naming a trained run")
  if mode == "train":
    return summary
  results = trainer.evaluate()
  metrics = report.build(results, len(trainer.pipe.source(config.evals.retrieval.get("split", "test"))
                                      if "retrieval" in config.evals else []),
                         int(jax.device_get(trainer.state.step)))
  metrics["compilations"] = trainer.tracker.summary()
  metrics["train"] = summary
  if trainer.model_init:
    metrics["model_init"] = trainer.model_init
  path = report.write(workdir, metrics)
  if jax.process_index() == 0:
    print(report.table(metrics), flush=True)
    logging.info("Wrote %s", path)
  return metrics
