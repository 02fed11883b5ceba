r"""MS-VLAM ablation: global only; + local; + object; all levels — two seeds each, on the synthetic set.

  python -m rsvlm_jax.sweep --config=configs/sweeps/msvlam_ablation.py --workdir=/tmp/ablation [--quick]

Args: seeds (count, default 2), steps (full run), quick_steps, data_dir, runlocal (smoke: tiny set and model,
a few steps; what the tests run), runs (a ';'-separated subset of the rows, e.g. runs=global;all).
"""
import os

import ml_collections

from rsvlm_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, seeds=2, steps=800, quick_steps=300,
                             data_dir=os.environ.get("RSVLM_DATA_DIR", "data"), runlocal=False, runs=("global", "global+local", "global+object", "all"))
  demo = config_lib.config_path("demo.py")
  extra = ",serve_dris=false" + (",runlocal=True" if arg.runlocal else "")
  c = ml_collections.ConfigDict()
  c.base = f"{demo}:steps={arg.steps},ckpt_every={arg.steps},data_dir={arg.data_dir}{extra}"
  c.quick_base = f"{demo}:steps={arg.quick_steps},ckpt_every={arg.quick_steps},data_dir={arg.data_dir}{extra}"
  c.seeds = tuple(range(arg.seeds))
  off, on = 0.0, 1.0
  level = lambda g, l, o: {"losses.global_alignment.weight": g, "losses.local_alignment.weight": l,
                           "losses.object_alignment.weight": o}
  rows = [
      {"name": "global", "overrides": level(on, off, off)},
      {"name": "global+local", "overrides": level(on, on * 0.5, off)},
      {"name": "global+object", "overrides": level(on, off, on * 0.5)},
      {"name": "all", "overrides": level(on, on * 0.5, on * 0.5)},
  ]
  unknown = set(arg.runs) - {r["name"] for r in rows}
  if unknown:
    raise ValueError(f"Unknown ablation row(s) {sorted(unknown)} in arg 'runs'; known: {[r['name'] for r in rows]}")
  c.runs = [r for r in rows if r["name"] in arg.runs]
  return c
