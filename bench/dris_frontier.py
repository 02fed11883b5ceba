r"""DRIS accuracy/compute frontier of ONE trained run: every bucket allocation, no retraining.

  python -m bench.dris_frontier --workdir=RUN --out=FILE [--config=configs/demo.py:...]
                                [--budgets=0.3,0.4,0.5,0.6,0.75] [--scorer=scorer.npz] [--split=test]

The run is loaded read only (rsvlm_jax.loading.load_run: its newest checkpoint, else its config.model_init)
with its own input pipeline (tokenizer and DRIS calibration of RUN, data of --config, which defaults to the
run's config.json). The analysis and its policies (run, complexity, learned, random, oracle, coarse_probe,
bucket_K) are rsvlm_jax/analysis/frontier.py's; see its docstring.

Writes {"run", "split", "num_images", "buckets": {"resolutions", "tokens", "encoder_gflops"}, "spearman",
"points": [{"policy", "budget", "tokens_per_image", "encoder_gflops_per_image", "bucket_histogram",
"t2i_R@10", "t2i_R@1", "i2t_R@10", "mR", "CIDEr-D", "BLEU-4", "loss"}, ...]}.
"""
from __future__ import annotations

import os

from absl import app
from absl import flags

from bench import common


def _flags():
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  return {
      "workdir": flags.DEFINE_string("workdir", None, "The trained run (read only)."),
      "config": config_flags.DEFINE_config_file("config", None, "The run's config (default: its config.json).",
                                                lock_config=False),
      "out": flags.DEFINE_string("out", "bench_results/dris_frontier.json", "Output JSON."),
      "budgets": flags.DEFINE_list("budgets", ["0.3", "0.4", "0.5", "0.6", "0.75"],
                                   "Token budgets (share of the largest bucket's tokens)."),
      "scorer": flags.DEFINE_string("scorer", "", "A learned scorer .npz to add as policy 'learned'."),
      "split": flags.DEFINE_string("split", "test", "Split to evaluate."),
      "batch": flags.DEFINE_integer("batch", 50, "Images per encode/caption batch."),
      "seed": flags.DEFINE_integer("seed", 0, "Seed of the random policy and the probe's folds."),
      "tables": flags.DEFINE_string("tables", "", "Also save the per-bucket tables (embeddings, captions, "
                                    "losses) and every policy's scores to this .npz, for further analysis."),
  }


def run_frontier(workdir: str, config=None, **kwargs) -> dict:
  """The frontier (analysis.frontier.frontier's kwargs) of the run in `workdir`, loaded read only; `config`
  (default: the run's config.json) sets the data and DRIS keys."""
  from rsvlm_jax import loading  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.analysis import frontier  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(workdir)
  config = config if config is not None else loading.read_config(workdir)
  loaded = loading.load_run(workdir, config)
  pipe = loaded.input_pipeline(config, run_dir=workdir)
  pred, params = loaded.predictor()
  return {"run": workdir, **frontier.frontier(loaded.model, params, pipe, pred, **kwargs)}


def main(argv, f):
  del argv
  result = run_frontier(f["workdir"].value, f["config"].value, split=f["split"].value,
                        budgets=[float(b) for b in f["budgets"].value], scorer_path=f["scorer"].value,
                        batch=f["batch"].value, seed=f["seed"].value, tables_path=f["tables"].value)
  common.write_json(f["out"].value, result)


if __name__ == "__main__":
  _F = _flags()
  flags.mark_flag_as_required("workdir")
  app.run(lambda argv: main(argv, _F))
