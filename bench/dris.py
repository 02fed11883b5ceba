r"""DRIS benchmark: fixed largest resolution vs fixed smallest vs DRIS at ~50% token budget.

  python -m bench.dris --out FILE [--quick] [--data_dir data] [--dris_batching mixed|homogeneous|both]

Same steps, seed and data for every run; each trains and evaluates on the synthetic test split through
the normal trainer. Writes {"runs": [{"name": "fixed_max"|"fixed_min"|"dris", "encoder_gflops_per_image",
"tokens_per_image", "eval_images_per_s", "t2i_R@10", "CIDEr-D", "compilations", "by_complexity":
{"simple"|"medium"|"dense": {"t2i_R@10", "CIDEr-D", "num_images"}}, ...}], "summary": {...}}; the complexity
groups are thirds of the test split by DRIS score, the same images for every run.
"""
from __future__ import annotations

import os
import tempfile

from absl import app
from absl import flags

from bench import common
from configs import demo

_OUT = flags.DEFINE_string("out", "bench_results/dris.json", "Output JSON.")
_QUICK = flags.DEFINE_bool("quick", False, "Short runs (under 10 minutes in all on a 2-core CPU).")
_DATA_DIR = flags.DEFINE_string("data_dir", os.environ.get("RSVLM_DATA_DIR", "data"), "TFDS data dir.")
_WORKDIR = flags.DEFINE_string("workdir", "", "Where the runs go (default: a temp dir).")
_STEPS = flags.DEFINE_integer("steps", 0, "Override the number of training steps.")
_BATCH = flags.DEFINE_integer("batch", 0, "Override the batch size.")
_BATCHING = flags.DEFINE_enum(
    "dris_batching", "mixed", ["mixed", "homogeneous", "both"],
    "How the dris run batches its buckets: mixed (every batch holds a static share of every bucket; the "
    "default), homogeneous (one bucket per batch), or both (adds a 'dris_homogeneous' run).")

RESOLUTIONS = (64, 96, 128)


def run_configs(steps: int, data_dir: str, batch: int = 64, batching: str = "mixed"):
  """{run name: config}; `batching` picks the dris run's batches (mixed, homogeneous, or both runs)."""
  base = f"steps={steps},ckpt_every={steps},data_dir={data_dir},batch={batch}"
  runs = [("fixed_max", f"res={RESOLUTIONS[-1]}"), ("fixed_min", f"res={RESOLUTIONS[0]}")]
  if batching in ("mixed", "both"):
    runs.append(("dris", "dris=True,budget=0.5,mixed=True"))
  if batching == "homogeneous":
    runs.append(("dris", "dris=True,budget=0.5,mixed=False"))
  if batching == "both":
    runs.append(("dris_homogeneous", "dris=True,budget=0.5,mixed=False"))
  out = {}
  for name, arg in runs:
    c = demo.get_config(f"{base},{arg}")
    c.input.resolutions = RESOLUTIONS if name.startswith("dris") else c.input.resolutions
    out[name] = c
  return out


def main(argv):
  del argv
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  # --quick: 200 steps at batch 32 (about 8 minutes for the three runs on 2 CPU cores); full: 800 at 64.
  steps = _STEPS.value or (200 if _QUICK.value else 800)
  batch = _BATCH.value or (32 if _QUICK.value else 64)
  root = _WORKDIR.value or tempfile.mkdtemp(prefix="bench_dris_")
  runs = []
  for name, config in run_configs(steps, _DATA_DIR.value, batch, _BATCHING.value).items():
    if _QUICK.value:
      config.evals.captioning.max_images = 150
    m = job.run(config, os.path.join(root, name))
    eff = m["efficiency"]
    runs.append({
        "name": name, "mixed_buckets": bool(config.input.get("mixed_buckets")) and name.startswith("dris"),
        "resolutions": eff["resolutions"], "bucket_histogram": eff["histogram"],
        "encoder_gflops_per_image": eff["encoder_gflops_per_image"], "tokens_per_image": eff["tokens_per_image"],
        "eval_images_per_s": m["retrieval"]["eval_images_per_s"], "t2i_R@10": m["retrieval"]["t2i_R@10"],
        "t2i_R@1": m["retrieval"]["t2i_R@1"], "mR": m["retrieval"]["mR"], "CIDEr-D": m["captioning"]["CIDEr-D"],
        "BLEU-4": m["captioning"]["BLEU-4"], "compilations": m["compilations"], "train_seconds":
        m["train"].get("train_seconds"),
        "by_complexity": {g: {"num_images": v["retrieval"]["num_images"], "t2i_R@10": v["retrieval"]["t2i_R@10"],
                              "CIDEr-D": v["captioning"]["CIDEr-D"]} for g, v in m["by_complexity"].items()}})
  by = {r["name"]: r for r in runs}
  summary = {"gflops_saving_vs_fixed_max": 1 - by["dris"]["encoder_gflops_per_image"] /
             by["fixed_max"]["encoder_gflops_per_image"]}
  for k in ("t2i_R@10", "CIDEr-D"):
    summary[f"{k}_rel_to_fixed_max"] = by["dris"][k] / max(by["fixed_max"][k], 1e-9) - 1
    summary[f"{k}_rel_to_fixed_min"] = by["dris"][k] / max(by["fixed_min"][k], 1e-9) - 1
    dense = {n: r["by_complexity"]["dense"][k] for n, r in by.items()}  # The third of the test set with most detail.
    summary[f"dense_{k}_rel_to_fixed_min"] = dense["dris"] / max(dense["fixed_min"], 1e-9) - 1
  common.write_json(_OUT.value, {"steps": steps, "batch": batch, "quick": _QUICK.value, "runs": runs,
                                 "summary": summary, "workdir": root})


if __name__ == "__main__":
  app.run(main)
