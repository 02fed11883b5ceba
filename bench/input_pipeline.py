r"""Input pipeline throughput: decode + resize + tokenize, with 1 and 2 worker threads.

  python -m bench.input_pipeline --out FILE [--data_dir data --dataset synthetic_scenes/demo --steps 30]

Compares with what the demo's training step consumes (examples/s of the train step, measured here on the
same config), and writes {"rows": [{"workers", "examples_per_s"}], "train_step_examples_per_s", "ratio"}.
"""
from __future__ import annotations

import os
import tempfile
import time

import jax
from absl import app
from absl import flags

from bench import common
from configs import demo

_OUT = flags.DEFINE_string("out", "bench_results/input_pipeline.json", "Output JSON.")
_DATA_DIR = flags.DEFINE_string("data_dir", os.environ.get("RSVLM_DATA_DIR", "data"), "TFDS data dir.")
_DATASET = flags.DEFINE_string("dataset", "synthetic_scenes/demo", "Dataset.")
_STEPS = flags.DEFINE_integer("steps", 30, "Batches to time per setting.")


def main(argv):
  del argv
  from rsvlm_jax.data import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  config = demo.get_config(f"data_dir={_DATA_DIR.value},dataset={_DATASET.value}")
  workdir = tempfile.mkdtemp(prefix="bench_input_")
  rows = []
  for workers in (1, 2):
    cfg = config.copy_and_resolve_references()
    cfg.input.num_threads = workers
    pipe = pipeline_lib.InputPipeline(cfg, workdir)
    it = iter(pipe.train_dataset(_STEPS.value + 2))
    next(it)  # Warm-up: thread pool start, first reads.
    t0 = time.perf_counter()
    for _ in range(_STEPS.value):
      next(it)
    sec = time.perf_counter() - t0
    rows.append({"workers": workers, "examples_per_s": _STEPS.value * cfg.input.batch_size / sec})
  # What the training step consumes: time the demo's jit'd step on one fixed batch.
  trainer = trainer_lib.Trainer(config, workdir)
  step_fn = trainer._train_step_fn()  # pylint: disable=protected-access
  from rsvlm_jax.runtime import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  batch = next(iter(trainer.pipe.train_dataset(1)))
  batch.pop("_bucket"), batch.pop("_step")
  arrays = mesh_lib.global_batch(batch, trainer.mesh)
  state = {"s": trainer.state}

  def one():
    state["s"], m = step_fn(state["s"], arrays)
    return m["loss"]

  sec = common.timeit(one, warmup=2, min_time=5.0)
  consumed = config.input.batch_size / sec
  best = max(r["examples_per_s"] for r in rows)
  common.write_json(_OUT.value, {"rows": rows, "train_step_examples_per_s": consumed, "ratio": best / consumed,
                                 "batch_size": config.input.batch_size, "devices": jax.device_count()})


if __name__ == "__main__":
  app.run(main)
