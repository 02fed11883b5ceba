r"""Demo: a small RS vision-language model on the synthetic scene set, trained in minutes on a CPU.

  python -m rsvlm_jax.main --config=configs/demo.py --workdir=/tmp/demo
  python -m rsvlm_jax.main --config=configs/demo.py:steps=50,ckpt_every=10 --workdir=/tmp/x
  python -m rsvlm_jax.main --config=configs/demo.py:runlocal=True --workdir=/tmp/smoke

Args (`configs/demo.py:key=val,...`): steps, ckpt_every, batch, runlocal (smoke mode: tiny data and
model, a few steps), dris (three resolution buckets at a 50% token budget instead of one), budget, mixed
(auto/true/false; with dris: every batch holds a share of every bucket; auto = on unless runlocal), scorer
(a learned DRIS scorer .npz; default: the content-complexity score), dris_at (train_and_serve or serve:
DRIS buckets only at evaluation, training at the largest), model_init (a trained run's workdir: start from
its params, e.g. `dris=True,dris_at=serve,model_init=RUN` with --mode=eval serves a res=128 run with DRIS),
dataset, data_dir, variant (ViT, e.g. mu/8, Ti/16), res (fixed resolution when dris=False), seed, and the
MS-VLAM weights global_w, local_w, object_w, caption_w.
"""
import os

import ml_collections

from rsvlm_jax import config as config_lib


def _mixed(value: str, runlocal: bool) -> bool:
  """Arg `mixed`: auto (on, except in runlocal smoke mode whose batch of 8 cannot hold a share of 8 devices
  per bucket), true or false."""
  choice = {"auto": not runlocal, "true": True, "1": True, "false": False, "0": False}.get(str(value).lower())
  if choice is None:
    raise ValueError(f"Config arg 'mixed' expects auto, true or false, got {value!r}")
  return choice


def get_config(arg=None):
  arg = config_lib.parse_arg(
      arg, steps=-1, ckpt_every=-1, batch=64, runlocal=False, dris=False, res=64, seed=0,
      dataset="synthetic_scenes/demo", data_dir=os.environ.get("RSVLM_DATA_DIR", "data"), variant="mu/8",
      global_w=1.0, local_w=0.0, object_w=0.0, caption_w=1.0, budget=0.5, eval_every=0, mixed="auto",
      scorer="", dris_at="train_and_serve", model_init="")
  c = ml_collections.ConfigDict()
  c.seed = arg.seed
  # A trained run's workdir (or checkpoint directory): when this workdir has no checkpoint, the params start
  # from that run's newest complete step (fine-tuning; or --mode=eval of its weights under this config).
  c.model_init = arg.model_init
  # Regex over "/"-joined param names that may be absent from model_init's checkpoint and start from their
  # initialisation (e.g. "^dec/" for a caption decoder added on top of converted open_clip towers).
  c.model_init_fresh = ""
  # Regex over param names of model_init's checkpoint that this model may leave unused (logged).
  c.model_init_skip = ""
  # -1 = the mode's default: 800 steps / checkpoint every 200 (runlocal: 6 / 3); other values must be positive.
  for key in ("steps", "ckpt_every"):
    if arg[key] != -1 and arg[key] < 1:
      raise ValueError(f"Config arg {key!r} must be a positive number of steps (or -1 for the default), "
                       f"got {arg[key]}")
  c.total_steps = arg.steps if arg.steps > 0 else (6 if arg.runlocal else 800)
  c.ckpt_every = arg.ckpt_every if arg.ckpt_every > 0 else (3 if arg.runlocal else 200)
  c.eval_every = arg.eval_every
  c.log_every = 1
  c.progress_every = 25
  c.compute_dtype = "float32"
  c.fsdp = False
  c.decoding = "greedy"
  c.beam_size = 4
  c.num_devices = 0  # 0 = every device of every process; N = the first N (tests compare 1 vs 8).
  c.tensorboard = True
  c.async_checkpoint = True
  c.keep_checkpoints = 3
  # Host syncs: metrics stay on device and are fetched every sync_every steps in one transfer (each step's loss
  # is still checked, naming the first non-finite one exactly; checkpoints and evals flush first).
  # nan_check_every_step=True fetches every step (sync_every=1).
  c.sync_every = 10
  c.nan_check_every_step = False

  c.input = ml_collections.ConfigDict()
  c.input.dataset = arg.dataset
  c.input.data_dir = arg.data_dir
  c.input.batch_size = arg.batch
  c.input.vocab_size = 1000
  c.input.text_len = 32
  c.input.phrase_len = 8
  c.input.max_phrases = 6
  c.input.max_objects = 16
  c.input.patch_size = int(arg.variant.split("/")[1])
  c.input.resolutions = (64, 96, 128) if arg.dris else (arg.res,)
  c.input.budget = arg.budget
  # DRIS batching: False = each batch is one bucket (one compilation per bucket); True = every batch holds a
  # static share of every bucket (one compilation; the batch keeps the data's content mix).
  c.input.mixed_buckets = _mixed(arg.mixed, arg.runlocal)
  # Mixed batches only: the share of each batch whose images swap buckets at random (same shapes and tokens;
  # every grid also sees content outside its score range).
  c.input.bucket_jitter = 0.0
  c.input.score_size = 64
  # DRIS score: "" = content complexity (dris.py); a path = a learned scorer (.npz from tools/fit_dris_scorer).
  c.input.scorer = arg.scorer
  # Where the DRIS buckets apply: "train_and_serve", or "serve" (train every image at the largest bucket,
  # evaluate/serve at the budget; the learned scorer is then best fitted on the run itself, see docs/dris.md).
  c.input.dris_at = arg.dris_at
  # >0: every image passes through detail_res px before its bucket's resolution (same tokens, capped detail;
  # e.g. `--config.input.detail_res=64 --mode=eval` on a copy of a 128 px run: how much detail it uses).
  c.input.detail_res = 0
  c.input.thresholds = ()
  c.input.coarse_to_fine = ml_collections.ConfigDict({"num_tiles": 0, "tile_grid": 2, "tile_size": 64})
  c.input.num_threads = 2
  c.input.prefetch = 4
  c.input.workers = 0
  c.input.tokenizer_path = ""

  c.model = ml_collections.ConfigDict()
  c.model.embed_dim = 128
  c.model.region_windows = 3
  c.model.image = ml_collections.ConfigDict({"variant": arg.variant, "posemb_grid": (16, 16), "pool_type": "map",
                                             "remat": False})
  c.model.text = ml_collections.ConfigDict({"width": 128, "depth": 2, "num_heads": 4, "mlp_dim": 512,
                                            "max_len": 32})
  c.model.decoder = ml_collections.ConfigDict({"width": 128, "depth": 2, "num_heads": 4, "mlp_dim": 512,
                                               "max_len": 32})

  c.losses = ml_collections.ConfigDict({
      "global_alignment": {"weight": arg.global_w, "kind": "softmax"},
      "local_alignment": {"weight": arg.local_w, "mode": "max_sim"},
      "object_alignment": {"weight": arg.object_w},
      "captioning": {"weight": arg.caption_w},
  })

  c.optim = ml_collections.ConfigDict({"lr": 1e-3, "warmup_steps": 100, "weight_decay": 1e-4,
                                       "grad_clip_norm": 1.0, "b1": 0.9, "b2": 0.98, "end_lr_factor": 0.01,
                                       # Params matching lr_mult_regex ("/"-joined names) train at lr * lr_mult.
                                       "lr_mult_regex": "", "lr_mult": 1.0})

  c.evals = ml_collections.ConfigDict({
      # complexity_groups: also report metrics for the simple/medium/dense thirds of the split (DRIS score).
      "retrieval": {"split": "test", "batch_size": 64, "complexity_groups": 3},
      "captioning": {"split": "test", "batch_size": 64, "num_examples": 5, "complexity_groups": 3},
      "efficiency": {"split": "test", "batch_size": 64},
  })
  c.distributed = ml_collections.ConfigDict({"coordinator_address": "", "num_processes": 0, "process_id": -1,
                                            "auto": False})

  c.runlocal = arg.runlocal
  if arg.runlocal:  # Smoke mode: tiny data and model, a handful of steps.
    if arg.dataset == "synthetic_scenes/demo":
      c.input.dataset = "synthetic_scenes/tiny"
    c.input.batch_size = 8
    c.input.resolutions = (32, 48) if arg.dris else (32,)
    c.input.vocab_size = 200
    c.model.image.variant = "pico/8"
    c.model.image.posemb_grid = (6, 6)
    c.input.patch_size = 8
    for tower in (c.model.text, c.model.decoder):
      tower.update(width=64, depth=1, num_heads=2, mlp_dim=128)
    c.model.embed_dim = 32
    c.optim.warmup_steps = 2
    for e in c.evals.values():
      e.batch_size = 8
  return c
