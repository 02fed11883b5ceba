r"""Fine-tune converted open_clip weights (OpenAI CLIP, RemoteCLIP, GeoRSCLIP, SkyCLIP) on an RS caption set.

  python -m rsvlm_jax.tools.convert_open_clip --model ViT-B-32 --checkpoint RemoteCLIP-ViT-B-32.pt --out /m/rc32
  python -m rsvlm_jax.build_dataset rsicd --manual_dir=/data/RSICD --data_dir=/data/tfds
  python -m rsvlm_jax.main --config=configs/clip_finetune.py:init=/m/rc32,dataset=rsicd,data_dir=/data/tfds \
      --workdir=/runs/rc32_rsicd

Args: init (the converted directory, required), dataset (rsicd, rsitmd, ucm, sydney, nwpu, rs_gpt4v, synthetic,
caption_files (your own CSV/JSONL: datasets/caption_files/README.md),
or any TFDS name), data_dir, runlocal (smoke mode: 3 steps, batch 2, 1 warmup step unless steps, batch or
warmup are given; dataset=synthetic reads 48/16/16 examples of the set `make demo` builds), steps (default
2000), batch (default 128), lr, wd, warmup (default 100),
decoder (add a caption decoder on top of the towers, trained from scratch at lr * decoder_lr_mult), global_w,
local_w, object_w, caption_w (MS-VLAM weights; local and object levels read the CLIP patch tokens through
img_token_proj, initialised from visual.proj), dris (buckets at about 1/2, 3/4 and 1x the native patch grid),
dris_at (serve: train at the native resolution, DRIS only when evaluating/serving; or train_and_serve), budget,
res (a fixed training resolution other than the native one), seed.

Defaults follow the published RS retrieval fine-tuning recipe of RS5M/GeoRSCLIP (RET-2: lr 5e-6, weight
decay 0.5, 100 warmup steps) with the global level only, plus the caption decoder.
"""
import os

import ml_collections

from rsvlm_jax import config as config_lib
from rsvlm_jax import config_schema

demo = config_lib.import_config("demo")

DATASETS = {"rsicd": "rsicd", "rsitmd": "rsitmd", "ucm": "ucm_captions", "sydney": "sydney_captions",
            "nwpu": "nwpu_captions", "rs_gpt4v": "rs_gpt4v/captions", "synthetic": "synthetic_scenes/demo"}

ARGS = dict(init="", dataset="rsicd", data_dir=os.environ.get("RSVLM_DATA_DIR", "data"), runlocal=False,
            steps=-1, batch=-1, lr=5e-6, wd=0.5, warmup=-1, decoder=True, decoder_lr_mult=200.0, global_w=1.0,
            local_w=0.0, object_w=0.0, caption_w=1.0, dris=False, dris_at="serve", budget=0.6, res=0, seed=0)


def get_config(arg=None):
  """`configs/clip_finetune.py:key=val,...` (see the module docstring)."""
  return config(**config_lib.parse_arg(arg, **ARGS))


def config(**args):
  """The config from typed args (names and defaults: ARGS). It reads no file: the converted directory's
  architecture (towers, text length, preprocessing, native resolution) is read where the run starts, through
  config key model_from (rsvlm_jax.config_schema.gate)."""
  unknown = sorted(set(args) - set(ARGS))
  if unknown:
    raise TypeError(f"configs/clip_finetune.py has no arg(s) {unknown}; known: {sorted(ARGS)}")
  arg = ml_collections.ConfigDict({**ARGS, **args})
  if not arg.init:
    raise ValueError("configs/clip_finetune.py needs init=DIR (a directory written by "
                     "python -m rsvlm_jax.tools.convert_open_clip, or a run fine-tuned from one)")
  c = demo.config(data_dir=arg.data_dir, seed=arg.seed, budget=arg.budget, runlocal=arg.runlocal,
                  serve_dris=False)
  if arg.dris_at not in ("serve", "train_and_serve"):
    raise ValueError(f"Config arg 'dris_at' must be serve or train_and_serve, got {arg.dris_at!r}")
  for key in ("steps", "batch", "warmup"):
    if arg[key] != -1 and arg[key] < (0 if key == "warmup" else 1):
      raise ValueError(f"Config arg {key!r} must be {'>= 0' if key == 'warmup' else 'positive'} (or -1 for the "
                       f"default), got {arg[key]}")
  given = lambda key, default, smoke: arg[key] if arg[key] != -1 else (smoke if arg.runlocal else default)
  dataset = DATASETS.get(arg.dataset, arg.dataset)
  c.input.dataset = dataset
  if arg.runlocal and dataset == "synthetic_scenes/demo":  # The set `make demo` builds, a few examples of it.
    c.input.splits = {"train": "train[:48]", "test": "test[:16]", "validation": "validation[:16]"}
  c.model_init = arg.init
  c.total_steps = given("steps", 2000, 3)
  c.ckpt_every = max(1, min(1000, c.total_steps))
  c.eval_every = 0

  # The model is the converted one (towers, projections, temperature; model_from.dir, read at run start), plus a
  # fresh caption decoder; the run options (e.g. model.image.remat) are this config's.
  c.model = config_schema.model_from_section(decoder=c.model.decoder)
  c.model_from.dir = arg.init
  if arg.dris:
    c.model_from.resolutions = "fractions"  # About 1/2, 3/4 and 1x the native patch grid.
  elif arg.res:
    c.model_from.resolutions, c.dris.resolutions = "config", (int(arg.res),)
  else:
    c.model_from.resolutions = "native"
  c.dris.mixed_buckets = bool(arg.dris and not arg.runlocal)
  c.dris.train = "largest" if arg.dris_at == "serve" else "buckets"
  c.input.tokenizer_path = ""  # The converted directory's BPE merges are adopted into the workdir.
  if arg.decoder:
    if arg.runlocal:
      c.model_from.decoder = "config"
      c.model.decoder.update(width=64, depth=1, num_heads=2, mlp_dim=128)
    else:  # The text tower's width, width/64 heads, a 4x MLP.
      c.model_from.decoder = "text"
      c.model.decoder.depth = 4
    c.model_init_fresh = "^dec/"
  # The token projection (initialised from visual.proj) is created only when a region/object level is on.
  c.model_init_skip = "^img_token_proj/"
  c.losses.global_alignment.weight = arg.global_w
  c.losses.local_alignment.weight = arg.local_w
  c.losses.object_alignment.weight = arg.object_w
  c.losses.captioning.weight = arg.caption_w if arg.decoder else 0.0
  if not arg.decoder:
    del c.evals["captioning"]

  c.input.batch_size = given("batch", 128, 2)  # runlocal: the dummy builds hold a few images.
  if arg.runlocal:
    c.num_devices = 1
  c.optim.update(lr=arg.lr, weight_decay=arg.wd, warmup_steps=given("warmup", 100, 1), b2=0.98,
                 lr_mult_regex="^dec/" if arg.decoder else "", lr_mult=arg.decoder_lr_mult)
  for e in c.evals.values():
    e.batch_size = 2 if arg.runlocal else 64
  return c
