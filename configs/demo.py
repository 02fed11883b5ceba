r"""Demo: the paper's method on the synthetic scene set, trained in minutes on a CPU.

  python -m rsvlm_jax.main --config=configs/demo.py --workdir=/tmp/demo
  python -m rsvlm_jax.main --config=configs/demo.py:steps=50,ckpt_every=10 --workdir=/tmp/x
  python -m rsvlm_jax.main --config=configs/demo.py:runlocal=True --workdir=/tmp/smoke

By default it trains all three MS-VLAM levels (global, local region, object) plus captioning at `res` px,
then evaluates the same weights twice: every image at `res` (the "at_largest" row) and with DRIS at serving
(each image at the bucket of about 1/2, 3/4 or 1x `res` that its score picks, at `budget`).

Args (`configs/demo.py:key=val,...`, or `demo.config(key=val, ...)` from another config; every other key:
`--config.KEY=VALUE`, see docs/config.md):
  steps, ckpt_every      training steps and checkpoint interval (-1 = 800 / 200; runlocal: 6 / 3)
  batch                  global batch size
  runlocal               smoke mode: tiny data and model, a few steps
  res                    training resolution (px) without `dris`
  serve_dris             true/false (default auto: on unless runlocal): serve the `res` model with DRIS
                         buckets next to the full-resolution row
  dris                   train with DRIS buckets 64/96/128 px (or `resolutions`) instead of one resolution
  resolutions            ';'-separated bucket sizes for `dris`, e.g. 64;96;128
  budget                 DRIS token budget (fraction of the largest bucket's tokens)
  mixed                  with dris: true/false (default auto: on unless runlocal), every batch holds a share
                         of every bucket
  scorer                 a learned DRIS scorer .npz (default: the content-complexity score)
  dris_at                with dris: train_and_serve, or serve (train at the largest bucket, DRIS at serving)
  model_init             a trained run's workdir to start from (e.g. with --mode=eval to serve its weights)
  dataset, data_dir      the TFDS dataset and where it is built
  variant                ViT variant NAME/PATCH, e.g. mu/8, Ti/16 (the patch size sets the token grid)
  seed                   init and data-order seed
  eval_every             evals every N steps during training (0 = at the end)
  global_w, local_w, object_w, caption_w   MS-VLAM level weights and the captioning weight
"""
import os

import ml_collections

from rsvlm_jax import config as config_lib
from rsvlm_jax import config_schema
from rsvlm_jax.dris import buckets
from rsvlm_jax import vit_variants

TEXT_LEN = 48  # Tokens per caption: every synthetic scene caption fits (see config).

# The args and their defaults. `mixed` and `serve_dris` are bools left to the config unless given (None, `auto`
# on the command line): on, except in runlocal smoke mode, whose batch of 8 cannot hold a share of 8 devices
# per bucket and whose 32 px images leave no smaller bucket worth serving.
ARGS = dict(steps=-1, ckpt_every=-1, batch=64, runlocal=False, dris=False, res=64, seed=0,
            serve_dris=config_lib.AUTO_BOOL, resolutions=(), dataset="synthetic_scenes/demo",
            data_dir=os.environ.get("RSVLM_DATA_DIR", "data"), variant="mu/8", global_w=1.0, local_w=0.5,
            object_w=0.5, caption_w=1.0, budget=0.5, eval_every=0, mixed=config_lib.AUTO_BOOL, scorer="",
            dris_at="train_and_serve", model_init="")


def get_config(arg=None):
  """`configs/demo.py:key=val,...` (see the module docstring)."""
  return config(**config_lib.parse_arg(arg, **ARGS))


def config(**args) -> ml_collections.ConfigDict:
  """The demo config from typed args (names and defaults: ARGS; serve_dris / mixed: None = auto). Other
  configs compose it by calling this (configs/caption_dataset.py, configs/clip_finetune.py)."""
  unknown = sorted(set(args) - set(ARGS))
  if unknown:
    raise TypeError(f"configs/demo.py has no arg(s) {unknown}; known: {sorted(ARGS)}")
  arg = ml_collections.ConfigDict({k: None if v is config_lib.AUTO_BOOL else v for k, v in {**ARGS, **args}.items()})
  auto = lambda value: (not arg.runlocal) if value is None else bool(value)
  for key in ("steps", "ckpt_every"):
    if arg[key] != -1 and arg[key] < 1:
      raise ValueError(f"Config arg {key!r} must be a positive number of steps (or -1 for the default), "
                       f"got {arg[key]}")
  if arg.dris_at not in ("train_and_serve", "serve"):
    raise ValueError(f"Config arg 'dris_at' must be train_and_serve or serve, got {arg.dris_at!r}")
  c = config_schema.defaults()
  c.seed = arg.seed
  c.model_init = arg.model_init
  c.total_steps = arg.steps if arg.steps > 0 else (6 if arg.runlocal else 800)
  c.ckpt_every = arg.ckpt_every if arg.ckpt_every > 0 else (3 if arg.runlocal else 200)
  c.eval_every = arg.eval_every
  c.runlocal = arg.runlocal

  c.input.dataset = arg.dataset
  c.input.data_dir = arg.data_dir
  c.input.batch_size = arg.batch
  # Caption length from the data: with the run's tokenizer the synthetic scene captions take up to 48 tokens
  # (EOS included; 21% of the demo set's training captions exceed 32, none 48), so no caption is cut.
  c.input.text_len = TEXT_LEN
  for tower in (c.model.text, c.model.decoder):
    tower.max_len = TEXT_LEN
  c.model.image.variant = arg.variant

  patch = vit_variants.patch_size({"variant": arg.variant})  # Raises naming the variant if it is not NAME/PATCH.
  res = 32 if arg.runlocal else arg.res
  if arg.dris:
    c.dris.resolutions = tuple(int(r) for r in arg.resolutions) or ((32, 48) if arg.runlocal else (64, 96, 128))
    c.dris.train = "largest" if arg.dris_at == "serve" else "buckets"
  elif auto(arg.serve_dris):
    c.dris.resolutions = buckets.fractional_resolutions(res, patch)
    c.dris.train = "largest"
    c.dris.eval_largest_too = True
  else:
    c.dris.resolutions = (res,)
  c.dris.budget = arg.budget
  c.dris.mixed_buckets = auto(arg.mixed)
  c.dris.scorer = arg.scorer

  c.losses.global_alignment.weight = arg.global_w
  c.losses.local_alignment.weight = arg.local_w
  c.losses.object_alignment.weight = arg.object_w
  c.losses.captioning.weight = arg.caption_w

  if arg.runlocal:  # Smoke mode: tiny data and model, a handful of steps.
    if arg.dataset == "synthetic_scenes/demo":
      c.input.dataset = "synthetic_scenes/tiny"
    c.input.batch_size = 8
    c.input.vocab_size = 200
    c.model.image.variant = "pico/8"
    c.model.image.posemb_grid = (6, 6)
    for tower in (c.model.text, c.model.decoder):
      tower.update(width=64, depth=1, num_heads=2, mlp_dim=128)
    c.model.embed_dim = 32
    c.optim.warmup_steps = 2
    for e in c.evals.values():
      e.batch_size = 8
  return c
