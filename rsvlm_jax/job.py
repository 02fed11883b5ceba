"""One job — train, evaluate, write metrics.json — callable from Python without any command-line flags.

The job joins the two halves that never import each other: the trainer (rsvlm_jax.train) and the
evaluators with their Predictor (rsvlm_jax.evaluate); `evaluate(trainer)` runs config.evals on a trainer.

`rsvlm_jax.main` is the command-line front end; sweeps, benchmarks and tests call `run` here, so
importing this module never defines absl flags that could clash with the caller's own.
"""
from __future__ import annotations

import os
import weakref

from absl import logging

from rsvlm_jax.runtime.library_logs import quiet_library_logs  # pylint: disable=unused-import (re-exported)


def read_only_dir(path: str) -> bool:
  """True for an existing directory without write permission (by its mode bits too: root ignores them)."""
  return os.path.isdir(path) and (not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222)


def run(config, workdir: str, mode: str = "train_and_eval", *, library_logs: bool = False) -> dict:
  """Runs a job programmatically (used by tests, sweeps and benchmarks); returns the final metrics.

  `--mode=eval` of a trained run writes only metrics.json into its workdir (nothing at all when the
  workdir is read-only) and takes no lock, so a run can be evaluated while it trains. `library_logs`
  shows orbax's INFO lines (hidden by default).

  A SIGTERM or the first SIGINT in training saves the current step and stops; in the evaluation it stops
  the evaluation at once (no metrics.json). Then the result is {"preempted": True, "signal": NAME,
  "interrupted": "training" | "evaluation", "train": the training summary}.
  """
  # Imported here so `--help` and flag errors stay fast.
  from rsvlm_jax import distributed  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import preemption  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  quiet_library_logs(not library_logs)
  # The config gate, before anything starts: a bad key or value is a ConfigError naming it.
  config = config_schema.gate(config)
  distributed.maybe_initialize(config.distributed)
  n = int(config.num_devices)  # The trainer's mesh: the first num_devices devices, or all of them.
  config_schema.batch_sizes_fit_devices(config, len(jax.devices()[:n] if n else jax.devices()))
  workdir = os.path.abspath(os.path.expanduser(workdir))
  unwritable = read_only_dir(workdir)
  trained = bool(checkpoint_lib.complete_steps(os.path.join(workdir, "checkpoints")))
  read_only = mode == "eval" and (unwritable or trained)
  # One handler of SIGTERM / SIGINT for the whole job, so that none falls between training and evaluation.
  with preemption.Signals() as signals:
    trainer = trainer_lib.Trainer(config, workdir, read_only=read_only)
    try:
      return _run(trainer, config, workdir, mode, signals, write_metrics=not unwritable)
    finally:
      trainer.close()


# One Predictor per trainer: its jit'd functions compile once for all the evals of a run.
_PREDICTORS = weakref.WeakKeyDictionary()


def predictor(trainer):
  """The Predictor (rsvlm_jax.evaluate.predictor) of `trainer`'s model and mesh, built on first use; its
  compilations are counted in trainer.tracker, with the train step's."""
  if trainer not in _PREDICTORS:
    from rsvlm_jax.evaluate import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
    _PREDICTORS[trainer] = predictor_lib.Predictor.from_config(trainer.model, trainer.mesh, trainer.config,
                                                               tracker=trainer.tracker)
  return _PREDICTORS[trainer]


def evaluate(trainer, params=None) -> dict:
  """{eval name: metrics} of config.evals on `params` (default: the trainer's current ones)."""
  from rsvlm_jax.evaluate import evaluators  # pylint: disable=g-import-not-at-top
  params = trainer.state.params if params is None else params
  return evaluators.run_evals(trainer.config.evals, trainer.pipe, predictor(trainer), params)


def _write_training_curves(workdir: str) -> None:
  """WORKDIR/training_curves.png from metrics.jsonl (process 0; a plotting failure never fails the run)."""
  import jax  # pylint: disable=g-import-not-at-top
  from rsvlm_jax import plots  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "metrics.jsonl")
  if jax.process_index() != 0 or not os.path.isfile(path):
    return
  try:
    if plots.training_curves_png(path, os.path.join(workdir, "training_curves.png")):
      logging.info("Wrote %s", os.path.join(workdir, "training_curves.png"))
  except (OSError, ValueError) as e:
    logging.warning("Could not draw training_curves.png: %s", e)


def _run(trainer, config, workdir: str, mode: str, signals, *, write_metrics: bool) -> dict:
  from rsvlm_jax.evaluate import evaluators as evaluators_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.evaluate import report  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import preemption  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  summary = {}
  if mode in ("train", "train_and_eval"):
    summary = trainer.train(on_eval=lambda params: evaluate(trainer, params), signals=signals)
    _write_training_curves(workdir)
    if summary.get("preempted"):
      return {"preempted": True, "signal": summary.get("signal"), "interrupted": "training", "train": summary}
  elif not trainer.restore_or_init():
    raise FileNotFoundError(f"--mode=eval needs a checkpoint in {os.path.join(workdir, 'checkpoints')} "
                            "or config.model_init naming a trained run")
  if mode == "train":
    return summary
  step = int(jax.device_get(trainer.state.step))
  # A SIGTERM (a cluster's grace period) or Ctrl-C stops the evaluation at once: the checkpoint is saved, and
  # no metrics.json is written from a part of the evals.
  try:
    with signals.interruptible():
      results = evaluate(trainer)
      largest = None
      if config.dris.eval_largest_too and trainer.pipe.buckets.num_buckets > 1:
        # The same weights with every image at the largest bucket: the reference row for DRIS at serving.
        largest = evaluators_lib.run_evals(config.evals, trainer.pipe.serving_at("largest"), predictor(trainer),
                                           trainer.state.params)
  except preemption.Interrupted as e:
    logging.warning("%s during the evaluation of step %d: evaluation stopped, metrics.json not written (the "
                    "checkpoint of step %d is kept; evaluate it with --mode=eval)", e, step, step)
    return {"preempted": True, "signal": signals.name, "interrupted": "evaluation", "train": summary}
  metrics = report.build(results, len(trainer.pipe.source(config.evals.retrieval.get("split", "test"))
                                      if "retrieval" in config.evals else []), step)
  metrics["compilations"] = trainer.tracker.summary()
  metrics["train"] = summary
  if trainer.model_init:
    metrics["model_init"] = trainer.model_init
  if largest is not None:
    metrics["at_largest"] = {k: v for k, v in report.build(largest, metrics["num_test_images"], metrics["step"]).items()
                             if k not in ("examples", "step", "num_test_images")}
  if jax.process_index() == 0:
    print(report.table(metrics), flush=True)
    if "at_largest" in metrics:
      print("\n" + report.comparison_table(metrics), flush=True)
  if write_metrics:
    logging.info("Wrote %s", report.write(workdir, metrics))
    if not trainer.read_only and config.tensorboard and jax.process_index() == 0:
      report.to_tensorboard(os.path.join(workdir, "tensorboard"), metrics)
  else:
    logging.warning("%s is read-only: metrics.json not written (the table above is the result)", workdir)
  return metrics
