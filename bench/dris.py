r"""DRIS benchmark: fixed largest resolution vs fixed smallest vs DRIS at ~50% token budget.

  python -m bench.dris --out FILE [--quick] [--data_dir data] [--dris_batching mixed|homogeneous|both]
                       [--scorer complexity|learned|both] [--serve] [--seed S] [--runs fixed_max,dris_serve]
                       [--budget 0.5] [--scorer_hidden 16] [--scorer_fit_steps 300]

Same steps, seed and data for every run; each trains and evaluates on the synthetic test split through
the normal trainer. Writes {"runs": [{"name": "fixed_max"|"fixed_min"|"dris", "encoder_gflops_per_image",
"tokens_per_image", "eval_images_per_s", "t2i_R@10", "CIDEr-D", "compilations", "by_complexity":
{"simple"|"medium"|"dense": {"t2i_R@10", "CIDEr-D", "num_images"}}, ...}], "summary": {...}}; the complexity
groups are thirds of the test split by DRIS score, the same images for every run.

--scorer learned|both: the fixed_max run is also the teacher of the learned DRIS scorer
(tools/fit_dris_scorer.py: its per-image loss with the image degraded to --scorer_low_res px minus its loss
at full resolution, on --scorer_images training images); with `learned` the dris run uses that scorer,
with `both` a 'dris_learned' run is added. The fit report goes into the JSON as "scorer_fit".

--serve adds 'dris_serve': DRIS at serving only (dris.train=largest). Training with dris_at=serve is the
fixed_max run step for step (same batches, same init), so it is not trained again: the dris_serve config
loads fixed_max's weights (config.model_init), fits the learned scorer on them (native token gain: the
loss at the smallest bucket minus at the largest, fit report "serve_scorer_fit"), and evaluates with DRIS
buckets at the same budget. The same config with every image at the largest bucket ('dris_serve_at_max')
reproduces fixed_max (summary.dris_serve.at_max_reproduces_fixed_max), so summary.dris_serve compares DRIS
with fixed_max on the same weights, free of run-to-run training noise.
--budget sets the DRIS runs' token budget (mean tokens per image over the largest bucket's, calibrated on
the training split; default 0.5).

The runs are a sweep (rsvlm_jax.sweep; `sweep_config` builds it) in WORKDIR/<run>/seed<S>, with the sweep's
results.json beside them. An existing --workdir is reused: finished training runs are read back, while
dris_serve and dris_serve_at_max (evaluations of fixed_max's weights) are fitted and evaluated again, e.g. at
another --budget or --scorer_hidden.
"""
from __future__ import annotations

import json
import os
import tempfile
import types

from absl import app
from absl import flags
import ml_collections

from bench import common
from rsvlm_jax import config as config_lib
from rsvlm_jax import sweep

# Flags exist only when run as a command: importing this module (tests, other tools) defines none.
F = types.SimpleNamespace()


def _define_flags():
  F.out = flags.DEFINE_string("out", "bench_results/dris.json", "Output JSON.")
  F.quick = flags.DEFINE_bool("quick", False, "Short runs (under 10 minutes in all on a 2-core CPU).")
  F.data_dir = flags.DEFINE_string("data_dir", os.environ.get("RSVLM_DATA_DIR", "data"), "TFDS data dir.")
  F.workdir = flags.DEFINE_string("workdir", "", "Where the runs go (default: a temp dir).")
  F.steps = flags.DEFINE_integer("steps", 0, "Override the number of training steps.")
  F.batch = flags.DEFINE_integer("batch", 0, "Override the batch size.")
  F.batching = flags.DEFINE_enum(
      "dris_batching", "mixed", ["mixed", "homogeneous", "both"],
      "How the dris run batches its buckets: mixed (every batch holds a static share of every bucket; the "
      "default), homogeneous (one bucket per batch), or both (adds a 'dris_homogeneous' run).")

  F.scorer = flags.DEFINE_enum(
      "scorer", "complexity", ["complexity", "learned", "both"],
      "The dris run's score: content complexity (default), the learned scorer fitted on the fixed_max run, or "
      "both (adds a 'dris_learned' run).")
  F.scorer_low_res = flags.DEFINE_integer(
      "scorer_low_res", 32, "Degraded resolution for the scorer's teacher signal (at 64 px this benchmark's "
      "fixed_max model loses under 0.01 nats per image: too little to learn from).")
  F.scorer_images = flags.DEFINE_integer("scorer_images", 0, "Training images the scorer is fitted on (0 = all).")
  F.scorer_hidden = flags.DEFINE_integer("scorer_hidden", 16, "Hidden units of the learned scorers' MLP.")
  F.scorer_fit_steps = flags.DEFINE_integer("scorer_fit_steps", 300, "AdamW steps of each learned-scorer fit.")
  F.budget = flags.DEFINE_float(
      "budget", 0.5, "Token budget of every DRIS run: mean tokens per image as a fraction of the largest "
      "bucket's, calibrated on the training split.")
  F.seed = flags.DEFINE_integer("seed", 0, "Seed of every run (model init and data order).")
  F.serve = flags.DEFINE_bool(
      "serve", False, "Add a 'dris_serve' run: fixed_max's weights (what training with dris.train=largest "
      "gives) with the learned scorer fitted on them (native token gain: loss at the smallest bucket minus "
      "loss at the largest), evaluated with DRIS buckets at the same budget.")
  F.runs = flags.DEFINE_list(
      "runs", [], "Only these of the runs the other flags ask for (e.g. fixed_max,dris_serve for more seeds of "
      "the paired serving comparison); fixed_max is always run, since every summary compares with it.")


RESOLUTIONS = (64, 96, 128)
# dris.scorer placeholder, replaced by a learned scorer in `prepare` (main): fitted on the fixed_max run for a
# trained run; for dris_serve, natively on the weights it evaluates (fixed_max's).
LEARNED = "<learned>"


def sweep_config(steps: int, data_dir: str, batch: int = 64, batching: str = "mixed", scorer: str = "complexity",
                 seed: int = 0, serve: bool = False, budget: float = 0.5, runs=()):
  """The bench's runs as an rsvlm_jax.sweep config (one seed). `batching` picks the dris run's batches (mixed,
  homogeneous, or both runs), `scorer` its score (complexity, learned, or both runs), `serve` adds dris_serve
  and dris_serve_at_max (evaluations of fixed_max's weights), `budget` is every DRIS run's token budget, `runs`
  a subset (plus fixed_max, which every summary compares with); learned runs come last and carry LEARNED."""
  if not 0 < budget <= 1:
    raise ValueError(f"--budget must be in (0, 1] (a fraction of the largest bucket's tokens), got {budget}")
  dris = f"dris=True,resolutions={';'.join(map(str, RESOLUTIONS))},budget={budget}"
  learned = {"dris.scorer": LEARNED}

  def run(name, args, overrides=None, **fields):
    return {"name": name, "args": args, "overrides": overrides or {}, **fields}

  rows = [run("fixed_max", f"res={RESOLUTIONS[-1]}"), run("fixed_min", f"res={RESOLUTIONS[0]}")]
  if batching in ("mixed", "both"):
    rows.append(run("dris", f"{dris},mixed=True"))
  if batching == "homogeneous":
    rows.append(run("dris", f"{dris},mixed=False"))
  if batching == "both":
    rows.append(run("dris_homogeneous", f"{dris},mixed=False"))
  if scorer == "learned":
    rows = [r for r in rows if r["name"] != "dris"] + [run("dris", f"{dris},mixed=True", learned)]
  if scorer == "both":
    rows.append(run("dris_learned", f"{dris},mixed=True", learned))
  if serve:  # Trains nothing: fixed_max's weights served with DRIS buckets, and with every image at the largest.
    serve_args, of_fixed_max = f"{dris},mixed=True,dris_at=serve", {"mode": "eval", "model_init_from": "fixed_max"}
    rows += [run("dris_serve_at_max", serve_args, {"dris.serve": "largest"}, **of_fixed_max),
             run("dris_serve", serve_args, learned, **of_fixed_max)]
  names = [r["name"] for r in rows]
  available = [n for n in names if n != "dris_serve_at_max"]  # dris_serve_at_max comes with dris_serve.
  unknown = sorted(set(runs) - set(available))
  if unknown:
    raise ValueError(f"--runs names {unknown}, which the other flags do not ask for; available: {available}")
  wanted = set(runs or names) | {"fixed_max"} | ({"dris_serve_at_max"} if "dris_serve" in runs else set())
  c = ml_collections.ConfigDict()
  # The records in docs/dris.md train the global level and captioning only, and serve one way per run.
  c.base = (f"{config_lib.config_path('demo.py')}:steps={steps},ckpt_every={steps},data_dir={data_dir},"
            f"batch={batch},serve_dris=false,local_w=0,object_w=0")
  c.seeds = (seed,)
  c.runs = [r for r in rows if r["name"] in wanted]
  return c


def _summary(by: dict, name: str) -> dict:
  """Run `name` against fixed_max and (when run) fixed_min: GFLOPs saving and relative t2i_R@10 / CIDEr-D."""
  out = {"gflops_saving_vs_fixed_max": 1 - by[name]["encoder_gflops_per_image"] /
         by["fixed_max"]["encoder_gflops_per_image"]}
  for k in ("t2i_R@10", "CIDEr-D"):
    out[f"{k}_rel_to_fixed_max"] = by[name][k] / max(by["fixed_max"][k], 1e-9) - 1
    if "fixed_min" not in by:
      continue
    out[f"{k}_rel_to_fixed_min"] = by[name][k] / max(by["fixed_min"][k], 1e-9) - 1
    dense = {n: r["by_complexity"]["dense"][k] for n, r in by.items()}  # The third of the test set with most detail.
    out[f"dense_{k}_rel_to_fixed_min"] = dense[name] / max(dense["fixed_min"], 1e-9) - 1
  return out


def _scorer_recipe() -> dict:
  """The learned scorers' fit settings from the flags (recorded in each fit report)."""
  return {"max_images": F.scorer_images.value, "hidden": F.scorer_hidden.value,
          "fit_steps": F.scorer_fit_steps.value}


def _row(name: str, config, m: dict) -> dict:
  eff = m["efficiency"]
  return {
      "name": name, "scorer": config.dris.scorer or "complexity",
      "mixed_buckets": bool(config.dris.mixed_buckets) and name.startswith("dris"),
      "dris_at": "serve" if config.dris.train == "largest" else "train_and_serve",
      "resolutions": eff["resolutions"], "bucket_histogram": eff["histogram"],
      "encoder_gflops_per_image": eff["encoder_gflops_per_image"], "tokens_per_image": eff["tokens_per_image"],
      "eval_images_per_s": m["retrieval"]["eval_images_per_s"], "t2i_R@10": m["retrieval"]["t2i_R@10"],
      "t2i_R@1": m["retrieval"]["t2i_R@1"], "mR": m["retrieval"]["mR"], "CIDEr-D": m["captioning"]["CIDEr-D"],
      "BLEU-4": m["captioning"]["BLEU-4"], "compilations": m["compilations"], "train_seconds":
      (m["train"] or {}).get("train_seconds"), "model_init": (m.get("model_init") or {}).get("source"),
      "by_complexity": {g: {"num_images": v["retrieval"]["num_images"], "t2i_R@10": v["retrieval"]["t2i_R@10"],
                            "CIDEr-D": v["captioning"]["CIDEr-D"]} for g, v in m["by_complexity"].items()}}


def main(argv):
  del argv
  # --quick: 150 steps at batch 32 (about 8.5 minutes for the three runs on 2 CPU cores; 200 steps took
  # 9.4 to 10.9 minutes with the machine's load); full: 800 at 64.
  steps = F.steps.value or (150 if F.quick.value else 800)
  batch = F.batch.value or (32 if F.quick.value else 64)
  root = F.workdir.value or tempfile.mkdtemp(prefix="bench_dris_")
  configs, extra = {}, {}

  def prepare(name, seed, config, rundir):
    """Records each run's config; puts a fitted learned scorer where a run carries LEARNED."""
    from rsvlm_jax.tools import fit_dris_scorer  # pylint: disable=g-import-not-at-top
    configs[name] = config
    if F.quick.value:  # An evaluator kwarg (evals.* are open), so not a sweep override, which sets known keys.
      config.evals.captioning.max_images = 150
    if config.dris.scorer != LEARNED:
      return
    if config.model_init:  # dris_serve: native gains of the weights it evaluates, fixed_max's.
      path = os.path.join(root, "dris_serve_scorer.npz")
      extra["serve_scorer_fit"] = fit_dris_scorer.fit_from_run(config, rundir, path, native=True,
                                                               **_scorer_recipe())
    else:  # Trained with a learned scorer: fitted once, on the fixed_max run.
      path = os.path.join(root, "dris_scorer.npz")
      if "scorer_fit" not in extra:
        extra["scorer_fit"] = fit_dris_scorer.fit_from_run(
            configs["fixed_max"], sweep.rundir(root, "fixed_max", seed), path, low_res=F.scorer_low_res.value,
            **_scorer_recipe())
    config.dris.scorer = path

  c = sweep_config(steps, F.data_dir.value, batch, F.batching.value, F.scorer.value, F.seed.value, F.serve.value,
                   F.budget.value, F.runs.value)
  runs = []
  for r in sweep.run_sweep(c, root, prepare=prepare):
    with open(os.path.join(r["workdir"], "metrics.json")) as f:
      runs.append(_row(r["name"], configs[r["name"]], json.load(f)))
  by = {r["name"]: r for r in runs}
  summary = _summary(by, "dris") if "dris" in by else {}
  for name in ("dris_learned", "dris_serve"):
    if name in by:
      summary[name] = _summary(by, name)
  if "dris_serve" in by:  # fixed_max's own weights: the comparison with fixed_max carries no training noise.
    summary["dris_serve"]["at_max_reproduces_fixed_max"] = all(
        abs(by["dris_serve_at_max"][k] - by["fixed_max"][k]) <= 1e-6 * max(1.0, abs(by["fixed_max"][k]))
        for k in ("t2i_R@10", "t2i_R@1", "mR", "CIDEr-D", "BLEU-4"))
  common.write_json(F.out.value, {"steps": steps, "batch": batch, "seed": F.seed.value, "budget": F.budget.value,
                                 "quick": F.quick.value,
                                 "runs": runs, "summary": summary, "workdir": root, **extra})


if __name__ == "__main__":
  _define_flags()
  app.run(main)
