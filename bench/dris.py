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

--serve adds 'dris_serve': DRIS at serving only (input.dris_at=serve). Training with dris_at=serve is the
fixed_max run step for step (same batches, same init), so it is not trained again: the dris_serve config
loads fixed_max's weights (config.model_init), fits the learned scorer on them (native token gain: the
loss at the smallest bucket minus at the largest, fit report "serve_scorer_fit"), and evaluates with DRIS
buckets at the same budget. The same config with every image at the largest bucket ('dris_serve_at_max')
reproduces fixed_max (summary.dris_serve.at_max_reproduces_fixed_max), so summary.dris_serve compares DRIS
with fixed_max on the same weights, free of run-to-run training noise.
--budget sets the DRIS runs' token budget (mean tokens per image over the largest bucket's, calibrated on
the training split; default 0.5). An existing --workdir is reused: finished runs are only re-evaluated.
"""
from __future__ import annotations

import copy
import os
import tempfile
import types

from absl import app
from absl import flags

from bench import common
from configs import demo

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
      "serve", False, "Add a 'dris_serve' run: fixed_max's weights (what training with input.dris_at=serve "
      "gives) with the learned scorer fitted on them (native token gain: loss at the smallest bucket minus "
      "loss at the largest), evaluated with DRIS buckets at the same budget.")
  F.runs = flags.DEFINE_list(
      "runs", [], "Only these of the runs the other flags ask for (e.g. fixed_max,dris_serve for more seeds of "
      "the paired serving comparison); fixed_max is always run, since every summary compares with it.")


RESOLUTIONS = (64, 96, 128)
LEARNED = "<learned>"  # input.scorer placeholder: replaced by the scorer fitted on the fixed_max run.


def run_configs(steps: int, data_dir: str, batch: int = 64, batching: str = "mixed", scorer: str = "complexity",
                seed: int = 0, serve: bool = False, budget: float = 0.5):
  """{run name: config}; `batching` picks the dris run's batches (mixed, homogeneous, or both runs),
  `scorer` its score (complexity, learned, or both runs), `budget` the token budget of every DRIS run;
  learned runs come last and carry LEARNED."""
  if not 0 < budget <= 1:
    raise ValueError(f"--budget must be in (0, 1] (a fraction of the largest bucket's tokens), got {budget}")
  base = f"steps={steps},ckpt_every={steps},data_dir={data_dir},batch={batch},seed={seed}"
  runs = [("fixed_max", f"res={RESOLUTIONS[-1]}"), ("fixed_min", f"res={RESOLUTIONS[0]}")]
  if batching in ("mixed", "both"):
    runs.append(("dris", f"dris=True,budget={budget},mixed=True"))
  if batching == "homogeneous":
    runs.append(("dris", f"dris=True,budget={budget},mixed=False"))
  if batching == "both":
    runs.append(("dris_homogeneous", f"dris=True,budget={budget},mixed=False"))
  if scorer == "learned":
    runs = [r for r in runs if r[0] != "dris"] + [("dris", f"dris=True,budget={budget},mixed=True")]
  if scorer == "both":
    runs.append(("dris_learned", f"dris=True,budget={budget},mixed=True"))
  if serve:
    runs.append(("dris_serve", f"dris=True,budget={budget},mixed=True,dris_at=serve"))
  out = {}
  for name, arg in runs:
    c = demo.get_config(f"{base},{arg}")
    c.input.resolutions = RESOLUTIONS if name.startswith("dris") else c.input.resolutions
    if scorer != "complexity" and (name == "dris_learned" or (name == "dris" and scorer == "learned")):
      c.input.scorer = LEARNED
    out[name] = c
  return out


def select_runs(configs: dict, names) -> dict:
  """The runs named in `names` (all if empty) plus fixed_max, in their usual order; unknown names fail."""
  if not names:
    return configs
  unknown = sorted(set(names) - set(configs))
  if unknown:
    raise ValueError(f"--runs names {unknown}, which the other flags do not ask for; available: {list(configs)}")
  return {n: c for n, c in configs.items() if n in names or n == "fixed_max"}


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


def refuse_own_checkpoints(workdir: str) -> None:
  """dris_serve must evaluate fixed_max's weights: refuse a workdir with complete checkpoints of its own (an
  older bench trained dris_serve) since those would be restored instead. The empty checkpoints/ directory an
  earlier serve evaluation left behind is fine, so the bench can be re-run, e.g. at another --budget."""
  from rsvlm_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
  steps = checkpoint.complete_steps(os.path.join(workdir, "checkpoints"))
  if steps:
    raise FileExistsError(f"{workdir} holds checkpoints of its own (steps {steps}; an older bench trained "
                          "dris_serve): they would be evaluated instead of fixed_max's weights; remove that "
                          "directory")


def _scorer_recipe() -> dict:
  """The learned scorers' fit settings from the flags (recorded in each fit report)."""
  return {"max_images": F.scorer_images.value, "hidden": F.scorer_hidden.value,
          "fit_steps": F.scorer_fit_steps.value}


def _serve_fixed_max(config, workdir: str, fixed_max_dir: str, scorer_path: str,
                     extra: dict) -> tuple[dict, dict]:
  """dris_serve: fixed_max's weights under the dris_at=serve config; fit the scorer on them, then evaluate
  twice: every image at the largest bucket (must reproduce fixed_max), and with DRIS buckets."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.tools import fit_dris_scorer  # pylint: disable=g-import-not-at-top
  refuse_own_checkpoints(workdir)
  config.model_init = fixed_max_dir
  extra["serve_scorer_fit"] = fit_dris_scorer.fit_from_run(config, workdir, scorer_path, native=True,
                                                           **_scorer_recipe())
  at_max = copy.deepcopy(config)
  at_max.input.thresholds = tuple([-1e30] * (len(config.input.resolutions) - 1))  # All at the largest.
  m_max = job.run(at_max, workdir, mode="eval")
  config.input.scorer = scorer_path
  m = job.run(config, workdir, mode="eval")  # Last, so the workdir's metrics.json is the DRIS one.
  return m, m_max


def _row(name: str, config, m: dict) -> dict:
  eff = m["efficiency"]
  return {
      "name": name, "scorer": config.input.get("scorer") or "complexity",
      "mixed_buckets": bool(config.input.get("mixed_buckets")) and name.startswith("dris"),
      "dris_at": config.input.get("dris_at", "train_and_serve"),
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
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  # --quick: 150 steps at batch 32 (about 8.5 minutes for the three runs on 2 CPU cores; 200 steps took
  # 9.4 to 10.9 minutes with the machine's load); full: 800 at 64.
  steps = F.steps.value or (150 if F.quick.value else 800)
  batch = F.batch.value or (32 if F.quick.value else 64)
  root = F.workdir.value or tempfile.mkdtemp(prefix="bench_dris_")
  runs, extra = [], {}
  configs = select_runs(run_configs(steps, F.data_dir.value, batch, F.batching.value, F.scorer.value,
                                    F.seed.value, F.serve.value, F.budget.value), F.runs.value)
  for name, config in configs.items():
    if F.quick.value:
      config.evals.captioning.max_images = 150
    if config.input.get("scorer") == LEARNED:
      config.input.scorer = os.path.join(root, "dris_scorer.npz")
      if "scorer_fit" not in extra:
        from rsvlm_jax.tools import fit_dris_scorer  # pylint: disable=g-import-not-at-top
        extra["scorer_fit"] = fit_dris_scorer.fit_from_run(
            configs["fixed_max"], os.path.join(root, "fixed_max"), config.input.scorer,
            low_res=F.scorer_low_res.value, **_scorer_recipe())
    if name == "dris_serve":
      m, m_max = _serve_fixed_max(config, os.path.join(root, name), os.path.join(root, "fixed_max"),
                                  os.path.join(root, "dris_serve_scorer.npz"), extra)
      runs.append(_row("dris_serve_at_max", config, m_max))
    else:
      m = job.run(config, os.path.join(root, name))
    runs.append(_row(name, config, m))
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
