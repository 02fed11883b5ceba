r"""Aggregates bench.dris results over seeds: per run and per summary entry, mean, std and standard error.

  python -m bench.dris_seeds --out bench_results/dris_seeds.json bench_results/dris_400steps_serve_fixedmax_seed*.json

Each input is one bench.dris JSON (one seed). Runs are matched by name; a run missing from some seeds is
averaged over the seeds that have it (its "num_seeds" says how many). The summary entries are relative
differences (e.g. summary.dris_serve.t2i_R@10_rel_to_fixed_max, a paired comparison when both runs share
weights), so their mean over seeds is the estimate and "sem" its standard error. Writes
{"inputs", "seeds", "runs": {name: {metric: {"mean", "std", "sem", "num_seeds"}}},
 "summary": {name: {key: {...}}}} (a boolean entry such as at_max_reproduces_fixed_max: true only when true
for every seed) and prints a markdown table of the runs.
"""
from __future__ import annotations

import json
import math
import sys

from absl import app
from absl import flags

METRICS = ("encoder_gflops_per_image", "tokens_per_image", "t2i_R@10", "t2i_R@1", "mR", "CIDEr-D", "BLEU-4")


def stats(values) -> dict:
  """mean, sample std (0 for one value), standard error of the mean and count."""
  values = [float(v) for v in values]
  n = len(values)
  mean = sum(values) / n
  std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
  return {"mean": mean, "std": std, "sem": std / math.sqrt(n), "num_seeds": n}


def aggregate(results: list[dict]) -> dict:
  """bench.dris payloads (one per seed) -> per-run and per-summary statistics over seeds."""
  if not results:
    raise ValueError("bench.dris_seeds needs at least one bench.dris result")
  runs: dict[str, dict[str, list]] = {}
  summary: dict[str, dict[str, list]] = {}
  checks: dict[str, dict[str, bool]] = {}  # Boolean summary entries: true only when true for every seed.
  for res in results:
    for row in res["runs"]:
      for k in METRICS:
        if k in row:
          runs.setdefault(row["name"], {}).setdefault(k, []).append(row[k])
      for group, v in row.get("by_complexity", {}).items():
        for k in ("t2i_R@10", "CIDEr-D"):
          runs.setdefault(row["name"], {}).setdefault(f"{group}_{k}", []).append(v[k])
    for name, entries in res.get("summary", {}).items():
      if not isinstance(entries, dict):  # The top level holds the dris run's own entries.
        summary.setdefault("dris", {}).setdefault(name, []).append(entries)
        continue
      for k, v in entries.items():
        if isinstance(v, bool):
          checks.setdefault(name, {})[k] = checks.get(name, {}).get(k, True) and v
        elif isinstance(v, (int, float)):
          summary.setdefault(name, {}).setdefault(k, []).append(v)
  out = {"seeds": [res.get("seed") for res in results],
         "runs": {n: {k: stats(v) for k, v in m.items()} for n, m in runs.items()},
         "summary": {n: {k: stats(v) for k, v in m.items()} for n, m in summary.items()}}
  for name, entries in checks.items():
    out["summary"].setdefault(name, {}).update(entries)
  return out


def markdown(agg: dict) -> str:
  """The runs as a table: mean ± std over seeds."""
  cols = ("encoder_gflops_per_image", "t2i_R@10", "CIDEr-D", "dense_t2i_R@10", "dense_CIDEr-D")
  lines = ["| run | seeds | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
  for name, m in agg["runs"].items():
    cells = [f"{m[c]['mean']:.3f} ± {m[c]['std']:.3f}" if c in m else "—" for c in cols]
    lines.append(f"| {name} | {m['t2i_R@10']['num_seeds']} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError("Pass one or more bench.dris result JSON files")
  results = []
  for p in paths:
    try:
      with open(p) as f:
        res = json.load(f)
      res["runs"]  # pylint: disable=pointless-statement
    except (OSError, ValueError, KeyError) as e:
      raise ValueError(f"{p} is not a bench.dris result (a JSON with 'runs'): {e}") from e
    results.append(res)
  agg = {"inputs": paths, **aggregate(results)}
  from bench import common  # pylint: disable=g-import-not-at-top
  common.write_json(flags.FLAGS.out, agg)
  sys.stdout.write(markdown(agg) + "\n")


if __name__ == "__main__":
  flags.DEFINE_string("out", "bench_results/dris_seeds.json", "Output JSON.")
  app.run(main)
