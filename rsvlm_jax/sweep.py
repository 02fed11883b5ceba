r"""Runs an ablation sweep locally, one run after the other.

  python -m rsvlm_jax.sweep --config=configs/sweeps/msvlam_ablation.py --workdir=DIR [--quick]

A sweep config (`get_config(arg)`) holds `base` (a config file with args, e.g. "configs/demo.py:steps=600"),
`quick_base` (the same for --quick), `seeds`, and `runs`: a list of {"name", "overrides": {dotted key: value}}.
Each (run, seed) trains and evaluates in DIR/<name>/seed<k>; finished runs (metrics.json present) are not
repeated. Writes DIR/results.json ([{"name", "seed", "metrics": {...}}]) and DIR/results.md (mean ± std).
"""
from __future__ import annotations

import json
import os

import numpy as np
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from rsvlm_jax import config as config_lib


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


def run_sweep(sweep, workdir: str, quick: bool = False) -> list[dict]:
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  base = sweep.quick_base if quick and sweep.get("quick_base") else sweep.base
  results = []
  for run in sweep.runs:
    for seed in sweep.seeds:
      rundir = os.path.join(workdir, run["name"], f"seed{seed}")
      done = os.path.join(rundir, "metrics.json")
      if not os.path.exists(done):
        config = config_lib.load_config(base)
        apply_overrides(config, dict(run.get("overrides", {})))
        config.seed = int(seed)
        logging.info("Sweep run %s seed %d -> %s", run["name"], seed, rundir)
        job.run(config, rundir)
      with open(done) as f:
        results.append({"name": run["name"], "seed": int(seed), "metrics": flatten_metrics(json.load(f))})
      _write(workdir, results)
  return results


def _write(workdir: str, results: list[dict]) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(results_markdown(results))


def _define_flags():
  """Flags exist only when this runs as a command, so importing the module next to `main` never clashes."""
  flags_ = {"config": config_flags.DEFINE_config_file("config", None, "Sweep config file.", lock_config=False),
            "workdir": flags.DEFINE_string("workdir", None, "Sweep directory."),
            "quick": flags.DEFINE_bool("quick", False, "Use the sweep's quick base config (fewer steps).")}
  flags.mark_flags_as_required(["config", "workdir"])
  return flags_


def main(argv, f):
  del argv
  results = run_sweep(f["config"].value, f["workdir"].value, f["quick"].value)
  print(results_markdown(results))


if __name__ == "__main__":
  _FLAGS = _define_flags()
  app.run(lambda argv: main(argv, _FLAGS))
