r"""Train and evaluate on a real RS caption set (RSICD, RSITMD, UCM-, Sydney-, NWPU-Captions, RS-GPT4V captions).
Your own images and captions: dataset=caption_files (one CSV/JSONL file, see datasets/caption_files/README.md).

  python -m rsvlm_jax.build_dataset rsicd --manual_dir=/data/rsicd_raw --data_dir=/data/tfds
  python -m rsvlm_jax.main --config=configs/caption_dataset.py:dataset=rsicd,data_dir=/data/tfds --workdir=DIR

Args: dataset, data_dir, variant (ViT, default B/16), dris (224/336/448 buckets at a 50% token budget),
res (fixed resolution without dris), steps (default 20000; runlocal: 3), batch, runlocal (smoke mode on a build
of the dummy data: a pico model, two examples per batch, 3 steps unless steps is given, one device), retrieval_only (captioning weight 0,
no captioning evaluator), mixed (default true: with dris, every batch holds a share of every bucket; false =
one bucket per batch), model_init (a trained run to start from). These sets have no boxes, so the object
level is off (see the docstring of rsvlm_jax/losses/alignment.py, and docs/msvlam.md).
"""
import os

import ml_collections

from rsvlm_jax import config as config_lib


demo = config_lib.import_config("demo")

ARGS = dict(dataset="rsicd", data_dir=os.environ.get("RSVLM_DATA_DIR", "data"), variant="B/16", dris=True, res=224,
            steps=-1, batch=256, runlocal=False, retrieval_only=False, seed=0, mixed=True, model_init="")


def get_config(arg=None):
  """`configs/caption_dataset.py:key=val,...` (see the module docstring)."""
  return config(**config_lib.parse_arg(arg, **ARGS))


def config(**args):
  """The config from typed args (names and defaults: ARGS); configs/rsicd_retrieval.py and
  configs/rs_gpt4v_b16.py compose it by calling this."""
  unknown = sorted(set(args) - set(ARGS))
  if unknown:
    raise TypeError(f"configs/caption_dataset.py has no arg(s) {unknown}; known: {sorted(ARGS)}")
  arg = ml_collections.ConfigDict({**ARGS, **args})
  c = demo.config(data_dir=arg.data_dir, seed=arg.seed, serve_dris=False)
  c.input.dataset = arg.dataset
  c.input.splits.test = "validation" if arg.dataset.startswith("caption_webdataset/rs5m") else "test"  # RS5M: no test.
  c.model_init = arg.model_init  # A trained run to start from (see configs/demo.py).
  if arg.steps != -1 and arg.steps < 1:
    raise ValueError(f"Config arg 'steps' must be a positive number of steps (or -1 for the default), got {arg.steps}")
  c.total_steps = arg.steps if arg.steps > 0 else 20000
  c.ckpt_every = 1000
  c.eval_every = 2000
  c.input.batch_size = arg.batch
  c.input.vocab_size = 8000
  c.dris.resolutions = (224, 336, 448) if arg.dris else (arg.res,)
  c.dris.mixed_buckets = arg.mixed  # Every batch holds a share of every DRIS bucket (see docs/dris.md).
  c.model.image.variant = arg.variant
  c.model.image.posemb_grid = (14, 14)
  c.model.embed_dim = 512
  c.input.text_len = 32  # A run warns at start when more than 1% of the training captions are longer.
  for tower in (c.model.text, c.model.decoder):
    tower.update(width=512, depth=6, num_heads=8, mlp_dim=2048, max_len=c.input.text_len)
  c.losses.object_alignment.weight = 0.0
  c.losses.local_alignment.weight = 0.5
  c.optim.update(lr=3e-4, warmup_steps=1000, weight_decay=0.05)
  if arg.retrieval_only:
    c.losses.captioning.weight = 0.0
    del c.evals["captioning"]
  if arg.runlocal:
    c.runlocal = True
    c.total_steps = arg.steps if arg.steps > 0 else 3
    c.ckpt_every, c.eval_every = min(3, c.total_steps), 0
    c.num_devices = 1
    c.input.batch_size = 2
    c.input.vocab_size = 100
    c.dris.resolutions = (32, 48) if arg.dris else (32,)
    c.input.text_len = 24
    c.model.image.update(variant="pico/8", posemb_grid=(6, 6))
    c.model.embed_dim = 32
    for tower in (c.model.text, c.model.decoder):
      tower.update(width=64, depth=1, num_heads=2, mlp_dim=128, max_len=24)
    c.optim.warmup_steps = 1
    for e in c.evals.values():
      e.batch_size = 2
  return c
