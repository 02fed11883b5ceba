r"""Runs an ablation sweep locally, one run after the other.

  python -m rsvlm_jax.sweep --config=configs/sweeps/msvlam_ablation.py --workdir=DIR [--quick]

A sweep config (`get_config(arg)`) holds `base` (a config file with args, e.g. "configs/demo.py:steps=600"),
`quick_base` (the same for --quick), `seeds`, and `runs`: a list of dicts, one per run, with the fields
  name             the run's folder: each (run, seed) runs in DIR/<name>/seed<k> with config.seed = k
  args             (optional) config-file args appended to the base's, e.g. "res=128" or
                   "dris=True,budget=0.5,mixed=True" (a later arg wins, so a run can change a base arg)
  overrides        (optional) {dotted key: value} set on the config the file built, e.g. {"dris.serve": "largest"}
  mode             (optional) "train_and_eval" (the default) or "eval": evaluate without training
  model_init_from  (optional) the name of an earlier run: config.model_init is its DIR/<name>/seed<k> (same
                   seed), so an "eval" run evaluates that run's weights and a trained one starts from them
A trained run whose metrics.json exists is not repeated: its metrics are read back. An "eval" run trains
nothing and is evaluated on every call (what it evaluates, e.g. a prepared scorer, may have changed); it
refuses a folder holding checkpoints of its own, which would be evaluated instead of model_init's weights.
From Python, run_sweep(..., prepare=fn) calls fn(name, seed, config, rundir) on every run's config, finished
or not, before the run: a caller fills in there what exists only once earlier runs finished (bench.dris fits
its learned DRIS scorer on the fixed_max run). Writes DIR/results.json ([{"name", "seed", "workdir",
"metrics": {...}}]) and DIR/results.md (mean ± std).
"""
from __future__ import annotations

import json
import os

import numpy as np
from absl import flags
from absl import logging

from rsvlm_jax import config as config_lib
from rsvlm_jax.runtime import cli


HEADLINE = ("retrieval/t2i_R@1", "retrieval/t2i_R@10", "retrieval/i2t_R@1", "retrieval/mR", "captioning/BLEU-4",
            "captioning/CIDEr-D")


def apply_overrides(config, overrides: dict) -> None:
  """Sets dotted keys; an unknown key fails naming it and the keys that exist there."""
  for key, value in overrides.items():
    config_lib.set_key(config, key, value, "Sweep override")


def flatten_metrics(metrics: dict) -> dict[str, float]:
  out = {}
  for group in ("retrieval", "captioning"):
    for k, v in metrics.get(group, {}).items():
      if isinstance(v, (int, float)):
        out[f"{group}/{k}"] = float(v)
  eff = metrics.get("efficiency", {})
  for k in ("tokens_per_image", "encoder_gflops_per_image"):
    if k in eff:
      out[f"efficiency/{k}"] = float(eff[k])
  return out


def results_markdown(results: list[dict], keys=HEADLINE) -> str:
  """One row per run name: mean ± std over seeds of the headline metrics."""
  names = list(dict.fromkeys(r["name"] for r in results))
  lines = ["| run | seeds | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
  for name in names:
    rows = [r["metrics"] for r in results if r["name"] == name]
    cells = []
    for k in keys:
      vals = np.array([m[k] for m in rows if k in m], np.float64)
      cells.append(f"{vals.mean():.3f} ± {vals.std():.3f}" if len(vals) else "-")
    lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


MODES = ("train_and_eval", "eval")
RUN_FIELDS = {"name", "args", "overrides", "mode", "model_init_from"}


def check_runs(runs) -> None:
  """Fails before anything runs on a run with an unknown field or mode, a repeated name, or a model_init_from
  that names no earlier run."""
  earlier = []
  for run in runs:
    name, unknown = run.get("name"), sorted(set(run) - RUN_FIELDS)
    if unknown or not name:
      what = f"unknown fields {unknown}" if unknown else "no name"
      raise ValueError(f"Sweep run {dict(run)} has {what}; the fields are {sorted(RUN_FIELDS)}")
    if name in earlier:
      raise ValueError(f"Sweep run name {name!r} is used twice")
    if run.get("mode", MODES[0]) not in MODES:
      raise ValueError(f"Sweep run {name!r}: mode {run['mode']!r} is not one of {MODES}")
    if run.get("model_init_from") and run["model_init_from"] not in earlier:
      raise ValueError(f"Sweep run {name!r}: model_init_from={run['model_init_from']!r} names no earlier run; "
                       f"earlier runs: {earlier}")
    earlier.append(name)


def rundir(workdir: str, name: str, seed: int) -> str:
  return os.path.join(workdir, name, f"seed{seed}")


def run_config(sweep, run, seed: int, workdir: str, quick: bool = False):
  """One (run, seed)'s config: the base config file with the run's args, then its overrides, the seed and
  model_init (the model_init_from run's folder)."""
  base = sweep.quick_base if quick and sweep.get("quick_base") else sweep.base
  path, _, args = base.partition(":")
  config = config_lib.load_config(f"{path}:" + ",".join(a for a in (args, run.get("args", "")) if a))
  apply_overrides(config, dict(run.get("overrides", {})))
  config.seed = int(seed)
  if run.get("model_init_from"):
    config.model_init = rundir(workdir, run["model_init_from"], seed)
  return config


def refuse_own_checkpoints(path: str) -> None:
  """An eval run of config.model_init's weights: refuse a folder with complete checkpoints of its own (they
  would be restored instead). The empty checkpoints/ folder an earlier evaluation leaves is fine, so an eval
  run can be repeated (e.g. at another DRIS budget)."""
  from rsvlm_jax.runtime import checkpoint  # pylint: disable=g-import-not-at-top
  steps = checkpoint.complete_steps(os.path.join(path, "checkpoints"))
  if steps:
    raise FileExistsError(f"{path} holds checkpoints of its own (steps {steps}): they would be evaluated instead "
                          "of config.model_init's weights; remove that directory")


def run_sweep(sweep, workdir: str, quick: bool = False, prepare=None) -> list[dict]:
  """Runs the sweep (see the module docstring); `prepare(name, seed, config, rundir)` may change each run's
  config before it runs. Returns the rows of results.json."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  check_runs(sweep.runs)
  results = []
  for run in sweep.runs:
    mode = run.get("mode", MODES[0])
    for seed in sweep.seeds:
      path = rundir(workdir, run["name"], seed)
      config = run_config(sweep, run, seed, workdir, quick)
      if mode == "eval" and config.model_init:
        refuse_own_checkpoints(path)
      if prepare is not None:
        prepare(run["name"], int(seed), config, path)
      done = os.path.join(path, "metrics.json")
      if mode == "eval" or not os.path.exists(done):
        logging.info("Sweep run %s seed %d (%s) -> %s", run["name"], seed, mode, path)
        job.run(config, path, mode=mode)
      with open(done) as f:
        results.append({"name": run["name"], "seed": int(seed), "workdir": path,
                        "metrics": flatten_metrics(json.load(f))})
      _write(workdir, results)
  return results


def _write(workdir: str, results: list[dict]) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(results_markdown(results))


FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
config_lib.define_config_flag("config", "Sweep config file (file.py[:args]).", flag_values=FLAGS, lock_config=False)
flags.DEFINE_string("workdir", None, "Sweep directory.", flag_values=FLAGS)
flags.DEFINE_bool("quick", False, "Use the sweep's quick base config (fewer steps).", flag_values=FLAGS)
flags.mark_flags_as_required(["config", "workdir"], flag_values=FLAGS)


def main(argv):
  del argv
  results = run_sweep(FLAGS.config, FLAGS.workdir, FLAGS.quick)
  print(results_markdown(results))


if __name__ == "__main__":
  cli.run(main, FLAGS, "sweep")
