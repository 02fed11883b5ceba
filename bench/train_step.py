r"""Training-step speed of the two-tower model against open_clip, and against the machine's matmul peak.

  python -m bench.train_step --out FILE [--quick] [--variants S/16,B/16] [--resolutions 224,160,...]

Rows: for each ViT variant and resolution (224 px and each DRIS bucket), images/s of one training step
(image tower + text tower + softmax contrastive loss + AdamW; our caption decoder is off, so the work
matches open_clip's CLIP), for rsvlm_jax and for open_clip (PyTorch CPU, model created locally, no
weights), measured alternately in the same process with the same width, depth, heads, text length and
batch. FLOPs per step: XLA's cost analysis of our compiled step (open_clip rows carry the same figure,
the models being the same size); PyTorch's own FlopCounterMode figure is added as
"torch_counted_gflops_per_step". MFU = achieved GFLOP/s (best step) / the machine's float32 matmul peak: the
best GFLOP/s over square matmuls up to 4096 and the model's own MLP shapes, measured warm in this process before
and after the rows (both reported as "peak_before"/"peak_after", the max used). A row above MFU 1.0 means the
peak is wrong: the JSON is written with "error" and the bench exits non-zero. Each row also carries the median,
10th/90th percentile and count of its per-step times, over both alternations.

Eval-side rows: image-encode images/s per bucket and retrieval metrics over 10k x 10k embeddings.
Also reports what the speed options gain (fused attention, remat, bf16) on the first variant at 224 px.

  python -m bench.train_step --ablations [--quick] [--profile DIR] --out FILE

--ablations: instead of the rows above, our step (first variant at 224 px) under each option of ABLATIONS (host
sync every step, unfused attention, gap/tok pooling instead of the MAP head, bfloat16 compute, remat) and
open_clip's step, against the shipped default, all built first and then timed in interleaved rounds (A B C ...,
B C ... A, ...), so the machine's load hits every column alike. Each timed sample is --steps_per_sample steps
dispatched back to back (so a host sync inside it costs what it costs in training); per column: median s/step,
p10/p90, count, images/s, ratio_vs_default (default median / column median, > 1 = faster) and the same ratio per
round. --profile DIR: where the step's time goes, ours vs open_clip (bench/step_profile.py): sub-steps timed
separately, a jax.profiler trace of our step (in DIR) summed per XLA op, torch.profiler's op table, and the
attention core alone in each implementation.

open_clip and torch come from the `bench` extra: `pip install -c constraints.txt -e .[bench]`.
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app
from absl import flags

from bench import common
from rsvlm_jax.losses import alignment
from rsvlm_jax.models import rsvlm
from rsvlm_jax import vit_variants

def _define(define, name, *args, **kwargs):
  """A flag of this bench, or the existing one when an imported module (tests) already defined the name."""
  return flags.FLAGS[name] if name in flags.FLAGS else define(name, *args, **kwargs)


_OUT = _define(flags.DEFINE_string, "out", "bench_results/train_step.json", "Output JSON.")
_QUICK = _define(flags.DEFINE_bool, "quick", False, "224 px and one small bucket, short timing windows.")
_VARIANTS = _define(flags.DEFINE_list, "variants", ["S/16", "B/16"], "ViT variants.")
_RES = _define(flags.DEFINE_list, "resolutions", [], "Resolutions (default: 224 and the DRIS buckets 160/224/336).")
_BATCH = _define(flags.DEFINE_integer, "batch", 8, "Images per step (fits this 2-core, 24 GiB machine).")
_TEXT_LEN = _define(flags.DEFINE_integer, "text_len", 32, "Caption length (tokens) for both implementations.")
_VOCAB = _define(flags.DEFINE_integer, "vocab", 49408, "Vocabulary size (open_clip's default tokenizer size).")
_MIN_TIME = _define(flags.DEFINE_float, "min_time", 6.0, "Seconds timed per measurement (each of 2 alternations).")
_SKIP_TORCH = _define(flags.DEFINE_bool, "skip_open_clip", False, "Only our rows (e.g. where torch is not installed).")
_ABLATIONS = _define(flags.DEFINE_bool, 
    "ablations", False, "Instead of the rows: our step under each option of ABLATIONS against the shipped default, "
    "and open_clip's, interleaved in rounds in one process (first variant at 224 px unless --variants/--resolutions "
    "are given).")
_ABLATION_NAMES = _define(flags.DEFINE_list, "ablation_names", [], "Subset of ABLATIONS to run (default: all; 'default' is "
                                    "always included).")
_ROUNDS = _define(flags.DEFINE_integer, "rounds", 0, "Ablation rounds (0: 8 with --quick, else 12).")
_STEPS_PER_SAMPLE = _define(flags.DEFINE_integer, "steps_per_sample", 2, "Ablation steps dispatched per timed sample.")
_PROFILE = _define(flags.DEFINE_string, "profile", "", "Also profile ours vs open_clip (bench/step_profile.py) on the first "
                               "variant at 224 px (or the first --resolutions); the trace goes to this folder.")

# Text towers as open_clip's configs give them (width, heads); depth 12 for both.
TEXT = {"S": (384, 6), "B": (512, 8), "L": (768, 12)}


def tower_dims(variant: str) -> dict:
  v = vit_variants.decode(variant)
  name = variant.split("/")[0]
  t_width, t_heads = TEXT.get(name, (v["width"], v["num_heads"]))
  return {"vit": v, "text_width": t_width, "text_heads": t_heads, "embed_dim": t_width}


# -- ours -----------------------------------------------------------------------------------------------
def build_ours(variant: str, res: int, batch: int, *, vocab: int, text_len: int, text_depth: int = 12,
               dtype=jnp.float32, fused=True, remat=False, pool="gap", metrics=False) -> dict:
  """Our two-tower training step, compiled: {"model", "tx", "step" (jit'd), "compiled", "state", "data",
  "flops", "encode", "params"}. pool "tok" adds the class token (as open_clip's tower has); metrics=True
  returns the trainer's metrics (loss, grad_norm, lr, temperature) instead of the bare loss."""
  d = tower_dims(variant)
  grid = res // d["vit"]["patch_size"]
  model = rsvlm.Model(
      vocab_size=vocab,
      image={"variant": variant, "posemb_grid": (grid, grid), "pool_type": pool, "remat": remat,
             "fused_attention": fused, "class_token": pool == "tok"},
      text={"width": d["text_width"], "depth": text_depth, "num_heads": d["text_heads"],
            "mlp_dim": 4 * d["text_width"], "max_len": text_len, "remat": remat},
      decoder=None, embed_dim=d["embed_dim"], dtype=dtype)
  rng = np.random.default_rng(0)
  data = {"image": jnp.asarray(rng.normal(size=(batch, res, res, 3)), jnp.float32),
          "text": jnp.asarray(rng.integers(1, vocab, size=(batch, text_len)), jnp.int32)}
  params = jax.jit(model.init)(jax.random.key(0), data)["params"]
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, weight_decay=0.1))
  state = (params, tx.init(params))
  num_params = {"total": rsvlm.count_params(params),
                "image_tower": rsvlm.count_params(params["img"]) + rsvlm.count_params(params["img_proj"])}

  def step(state, data):
    params, opt_state = state

    def loss_fn(p):
      _, out = model.apply({"params": p}, data, train=True)
      loss, _ = alignment.global_contrastive(out["zimg"], out["ztxt"], out["logit_scale"], out["logit_bias"],
                                             kind="softmax")
      return loss

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    new_state = (optax.apply_updates(params, updates), opt_state)
    if metrics:  # What the trainer's step returns (trainer._train_step_fn), for the host-sync variants.
      return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr": jnp.float32(1e-4),
                         "temperature": jnp.exp(params["logit_scale"])}
    return new_state, loss

  jitted = jax.jit(step, donate_argnums=(0,))
  compiled = jitted.lower(state, data).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  encode = jax.jit(lambda p, x: model.apply({"params": p}, x, method=rsvlm.Model.encode_image)[0])
  return {"model": model, "tx": tx, "step": jitted, "compiled": compiled, "state": state, "data": data,
          "flops": float(cost["flops"]), "encode": encode, "params": num_params}


def make_ours(variant: str, res: int, batch: int, *, dtype=jnp.float32, fused=True, remat=False):
  """(compiled step, state, batch arrays, flops per step, jit'd image encoder) for our two-tower step."""
  b = build_ours(variant, res, batch, vocab=_VOCAB.value, text_len=_TEXT_LEN.value, dtype=dtype, fused=fused,
                 remat=remat)
  return b["compiled"], b["state"], b["data"], b["flops"], b["encode"]


# -- open_clip ------------------------------------------------------------------------------------------
def build_open_clip(variant: str, res: int, batch: int, *, vocab: int, text_len: int, text_depth: int = 12,
                    count_flops: bool = True) -> dict:
  """The same two-tower model and step in open_clip: {"clip", "opt", "images", "text", "labels", "step",
  "flops" (torch-counted, None unless count_flops)}."""
  import torch  # pylint: disable=g-import-not-at-top
  from open_clip import model as oc_model  # pylint: disable=g-import-not-at-top
  from torch.utils import flop_counter  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  d = tower_dims(variant)
  v = d["vit"]
  clip = oc_model.CLIP(
      embed_dim=d["embed_dim"],
      vision_cfg=oc_model.CLIPVisionCfg(layers=v["depth"], width=v["width"], head_width=v["width"] // v["num_heads"],
                                        mlp_ratio=v["mlp_dim"] / v["width"], patch_size=v["patch_size"],
                                        image_size=res),
      text_cfg=oc_model.CLIPTextCfg(context_length=text_len, vocab_size=vocab, width=d["text_width"],
                                    heads=d["text_heads"], layers=text_depth))
  clip.train()
  opt = torch.optim.AdamW(clip.parameters(), lr=1e-4, weight_decay=0.1)
  images = torch.randn(batch, 3, res, res)
  text = torch.randint(1, vocab, (batch, text_len))
  labels = torch.arange(batch)

  def step():
    opt.zero_grad(set_to_none=True)
    img, txt, scale = clip(images, text)[:3]
    logits = scale * img @ txt.T
    loss = (torch.nn.functional.cross_entropy(logits, labels) +
            torch.nn.functional.cross_entropy(logits.T, labels)) / 2
    loss.backward()
    torch.nn.utils.clip_grad_norm_(clip.parameters(), 1.0)
    opt.step()
    return loss.detach()

  flops = None
  if count_flops:
    counter = flop_counter.FlopCounterMode(display=False)
    with counter:
      step()
    flops = counter.get_total_flops()
  return {"clip": clip, "opt": opt, "images": images, "text": text, "labels": labels, "step": step,
          "flops": flops}


def make_open_clip(variant: str, res: int, batch: int):
  """(step closure, torch-counted flops) for the same two-tower model in open_clip."""
  b = build_open_clip(variant, res, batch, vocab=_VOCAB.value, text_len=_TEXT_LEN.value)
  return b["step"], b["flops"]


def _runner(compiled, state, data):
  """A no-argument closure running one donated training step and waiting for it."""
  holder = {"s": state}

  def run():
    holder["s"], loss = compiled(holder["s"], data)
    jax.block_until_ready(loss)

  return run, holder


def bench_pair(variant, res, batch, peak, min_time, with_torch):
  compiled, state, data, flops, encode = make_ours(variant, res, batch)
  ours, holder = _runner(compiled, state, data)
  torch_step, torch_flops = make_open_clip(variant, res, batch) if with_torch else (None, None)
  times = {"rsvlm_jax": [], "open_clip": []}
  for _ in range(2):  # Alternate, so drift in the machine's state hits both alike.
    times["rsvlm_jax"].extend(common.step_times(ours, min_time=min_time))
    if torch_step is not None:
      times["open_clip"].extend(common.step_times(torch_step, min_time=min_time))
  rows = []
  for impl, ts in times.items():
    if not ts:
      continue
    sec = float(np.median(ts))
    row = {"impl": impl, "variant": variant, "resolution": res, "batch": batch, "images_per_s": batch / sec,
           "seconds_per_step": sec, "step_time_spread": common.spread(ts), "gflops_per_step": flops / 1e9,
           "mfu": flops / sec / 1e9 / peak}
    if impl == "open_clip":
      row["torch_counted_gflops_per_step"] = torch_flops / 1e9
    rows.append(row)
  # The step donated the initial params: encode with the current ones.
  enc_sec = common.timeit(lambda: encode(holder["s"][0], data["image"]), min_time=min_time / 2)
  eval_row = {"variant": variant, "resolution": res, "encode_images_per_s": batch / enc_sec}
  return rows, eval_row


def retrieval_speed(n: int = 10_000, dim: int = 512) -> dict:
  """Similarity of n images x n captions plus ranking, as the retrieval evaluator does it."""
  from rsvlm_jax.evaluate import retrieval  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  zi = rng.normal(size=(n, dim)).astype(np.float32)
  zt = rng.normal(size=(n, dim)).astype(np.float32)
  t0 = time.perf_counter()
  sim = np.asarray(jax.jit(lambda a, b: a @ b.T)(zi, zt))
  t_sim = time.perf_counter() - t0
  retrieval.retrieval_metrics(sim, np.arange(n))
  total = time.perf_counter() - t0
  return {"num_embeddings": n, "dim": dim, "similarity_seconds": t_sim, "total_seconds": total}


def speed_options(variant, res, batch, peak, min_time) -> list[dict]:
  """What each speed option gains on our step (relative to the plain float32, unfused baseline)."""
  rows = []
  for name, kw in (("baseline (unfused attention)", {"fused": False}), ("fused attention", {"fused": True}),
                   ("fused + remat", {"fused": True, "remat": True}),
                   ("fused + bf16 compute", {"fused": True, "dtype": jnp.bfloat16})):
    compiled, state, data, flops, _ = make_ours(variant, res, batch, **kw)
    sec = float(np.median(common.step_times(_runner(compiled, state, data)[0], min_time=min_time)))
    rows.append({"option": name, "images_per_s": batch / sec, "gflops_per_step": flops / 1e9,
                 "mfu": flops / sec / 1e9 / peak})
  base = rows[0]["images_per_s"]
  for r in rows:
    r["speedup_vs_baseline"] = r["images_per_s"] / base
  return rows


# -- ablations: what each option gains, in one run ------------------------------------------------------------
# Each variant is the shipped default with one change: the default is what the config defaults train with (MAP-head
# pooling, fused attention, float32 compute, no remat, the step's metrics fetched to the host every 10 steps:
# config key host_sync_every=10).
# name -> (build_ours options, or None for open_clip's step; description)
DEFAULT_SYNC_EVERY = 10
ABLATIONS = {
    "default": ({}, "MAP head, fused attention, float32, no remat, metrics fetched every 10 steps "
                    "(the config defaults)"),
    "host_sync_every_step": ({"sync_every": 1}, "jax.device_get of the step's metrics after every step "
                                                "(sync_every=1, as the config's host_sync_every=1 does)"),
    "unfused_attention": ({"fused": False}, "image tower attention by flax's nn.dot_product_attention (the text "
                                            "tower has no switch: it stays fused)"),
    "pool_gap": ({"pool": "gap"}, "mean of the patch tokens instead of the MAP head (no head params)"),
    "pool_tok": ({"pool": "tok"}, "class token (one more token, 2 x width params) instead of the MAP head: "
                                  "open_clip's pooling"),
    "bf16_compute": ({"dtype": jnp.bfloat16}, "bfloat16 activations and matmuls (params, grads, AdamW float32)"),
    "remat": ({"remat": True}, "rematerialised blocks in both towers"),
    "open_clip": (None, "open_clip's step (PyTorch, eager), same sizes, class-token pooling, torch threads = cores"),
    "open_clip_1_thread": (None, "open_clip's step with torch.set_num_threads(1) while it runs (what its threads "
                                 "gain, or lose when other processes share the cores)"),
}


def _chunk_runner(compiled, state, data, *, steps: int, sync_every: int):
  """One timed sample: `steps` donated steps dispatched back to back, the metrics fetched to the host every
  `sync_every` steps as the trainer does, then a wait for the last step (the timing boundary, no transfer)."""
  holder = {"s": state, "pending": [], "count": 0}

  def run():
    for _ in range(steps):
      holder["s"], m = compiled(holder["s"], data)
      holder["pending"].append(m)
      holder["count"] += 1
      if holder["count"] % sync_every == 0:
        jax.device_get(holder["pending"])
        holder["pending"].clear()
    jax.block_until_ready((holder["s"], m))

  return run


def summarize_ablations(times: dict[str, list[list[float]]], batch: int, default: str = "default") -> list[dict]:
  """Rows from per-round per-step seconds ({name: [[seconds of each sample in round r], ...]}): the median, p10,
  p90 and count over all rounds, images/s, ratio_vs_default = default median / this median (> 1: faster than the
  default), ratio_vs_default_best = default best / this best (load only ever adds time, so the best steps are
  the least disturbed), the ratio per round (paired: both measured in that round) with its median, p10 and p90,
  and whether the two p10-p90 ranges are apart; ours/open_clip as speed_ratio_vs_open_clip when open_clip ran."""
  flat = {k: [t for r in v for t in r] for k, v in times.items()}
  base = float(np.median(flat[default]))
  rows = []
  for name, ts in flat.items():
    sp = common.spread(ts)
    med = sp["median_s"]
    per_round = [float(np.median(d) / np.median(v)) for d, v in zip(times[default], times[name]) if d and v]
    dsp = common.spread(flat[default])
    row = {"name": name, "seconds_per_step": med, "p10_s": sp["p10_s"], "p90_s": sp["p90_s"], "n": sp["num_steps"],
           "images_per_s": batch / med, "ratio_vs_default": base / med,
           "ratio_vs_default_best": float(np.min(flat[default])) / sp["min_s"], "round_ratios": per_round,
           "round_ratio_median": float(np.median(per_round)), "round_ratio_p10": float(np.percentile(per_round, 10)),
           "round_ratio_p90": float(np.percentile(per_round, 90)),
           "spread_apart_from_default": bool(sp["p90_s"] < dsp["p10_s"] or sp["p10_s"] > dsp["p90_s"]),
           "step_time_spread": sp}
    if "open_clip" in flat and not name.startswith("open_clip"):
      row["speed_ratio_vs_open_clip"] = float(np.median(flat["open_clip"])) / med
    rows.append(row)
  return rows


def run_ablations(variant: str, res: int, batch: int, *, names, rounds: int, min_time: float, steps_per_sample: int,
                  vocab: int, text_len: int, text_depth: int = 12, log=print) -> dict:
  """Builds every named variant, warms each, then times them in rounds (A B C ..., B C ... A, ...): per round and
  variant, samples of `steps_per_sample` steps for at least `min_time` seconds (one sample at least)."""
  names = ["default"] + [n for n in names if n != "default"]
  runs, meta = {}, {}
  for name in names:
    opts, desc = ABLATIONS[name]
    if opts is None:
      oc = build_open_clip(variant, res, batch, vocab=vocab, text_len=text_len, text_depth=text_depth,
                           count_flops=False)
      step, threads = oc["step"], (1 if name.endswith("1_thread") else None)

      def run(step=step, threads=threads):
        import torch  # pylint: disable=g-import-not-at-top
        before = torch.get_num_threads()
        torch.set_num_threads(threads or before)
        try:
          for _ in range(steps_per_sample):
            step()
        finally:
          torch.set_num_threads(before)

      runs[name] = run
      meta[name] = {"impl": "open_clip", "description": desc,
                    "params": {"total": sum(p.numel() for p in oc["clip"].parameters()),
                               "image_tower": sum(p.numel() for p in oc["clip"].visual.parameters())}}
    else:
      opts = {"pool": "map", **opts}  # The shipped pooling (build_ours' own default is the rows' "gap").
      sync_every = opts.pop("sync_every", DEFAULT_SYNC_EVERY)
      b = build_ours(variant, res, batch, vocab=vocab, text_len=text_len, text_depth=text_depth, metrics=True,
                     **opts)
      runs[name] = _chunk_runner(b["compiled"], b["state"], b["data"], steps=steps_per_sample, sync_every=sync_every)
      settings = {"pool": opts["pool"], "fused_attention": opts.get("fused", True),
                  "compute_dtype": jnp.dtype(opts.get("dtype", jnp.float32)).name, "remat": opts.get("remat", False),
                  "sync_every": sync_every}
      meta[name] = {"impl": "rsvlm_jax", "description": desc, "settings": settings, "params": b["params"],
                    "gflops_per_step": b["flops"] / 1e9}
      del b
    runs[name]()  # Warm (compiled above; first-call allocations).
    log({"built": name, **meta[name]})
  times = {n: [] for n in names}
  load = []  # The machine's 1-minute load average after each round (other processes share the cores).
  for r in range(rounds):
    # Round r starts at column r (mod columns): no column always follows the same other one (e.g. torch's).
    for name in names[r % len(names):] + names[:r % len(names)]:
      times[name].append([t / steps_per_sample for t in
                          common.step_times(runs[name], warmup=0, min_time=min_time, min_iters=1)])
    load.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    log({"round": r, "load": load[-1], **{n: round(float(np.median(times[n][-1])), 4) for n in names}})
  rows = summarize_ablations(times, batch)
  for row in rows:
    row.update(meta[row["name"]])
  return {"variant": variant, "resolution": res, "batch": batch, "rounds": rounds,
          "steps_per_sample": steps_per_sample, "min_time_per_round": min_time, "load_avg_1min_per_round": load,
          "rows": rows}


def cpu_flags(wanted=("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx_vnni")) -> list[str]:
  """Which of the matmul-relevant CPU flags this machine has (Linux; empty elsewhere)."""
  try:
    with open("/proc/cpuinfo") as f:
      have = set(" ".join(l for l in f if l.startswith("flags")).split())
  except OSError:
    return []
  return [w for w in wanted if w in have]


def ablations_main(quick: bool, with_torch: bool) -> dict:
  variants = _VARIANTS.value if flags.FLAGS["variants"].present else _VARIANTS.value[:1]
  resolutions = [int(r) for r in _RES.value] or [224]
  names = _ABLATION_NAMES.value or list(ABLATIONS)
  unknown = [n for n in names if n not in ABLATIONS]
  if unknown:
    raise SystemExit(f"bench.train_step: unknown --ablation_names {unknown}; known: {list(ABLATIONS)}")
  if not with_torch:
    names = [n for n in names if ABLATIONS[n][0] is not None]
  rounds = _ROUNDS.value or (8 if quick else 12)
  min_time = 0.5 if quick else _MIN_TIME.value / 4
  results = [run_ablations(v, res, _BATCH.value, names=names, rounds=rounds, min_time=min_time,
                           steps_per_sample=_STEPS_PER_SAMPLE.value, vocab=_VOCAB.value, text_len=_TEXT_LEN.value)
             for v in variants for res in resolutions]
  return {"mode": "ablations", "quick": quick, "text_len": _TEXT_LEN.value, "vocab": _VOCAB.value,
          "default_sync_every": DEFAULT_SYNC_EVERY, "cpu_flags": cpu_flags(), "ablations": results}


def profile_main(out_dir: str, res: int, with_torch: bool, min_time: float, rounds: int) -> dict:
  from bench import step_profile  # pylint: disable=g-import-not-at-top
  variant, batch = _VARIANTS.value[0], _BATCH.value
  kw = {"vocab": _VOCAB.value, "text_len": _TEXT_LEN.value}
  v = vit_variants.decode(variant)
  tokens = (res // v["patch_size"]) ** 2
  result = step_profile.profile(
      lambda: build_ours(variant, res, batch, pool="map", **kw),
      (lambda: build_open_clip(variant, res, batch, count_flops=False, **kw)) if with_torch else None,
      out_dir, min_time=min_time, rounds=rounds,
      attention_shape=(batch, tokens, v["num_heads"], v["width"] // v["num_heads"]))
  result.update({"variant": variant, "resolution": res, "batch": batch,
                 "ours": "the ablations' default (MAP head, fused attention, float32, no remat)"})
  common.write_json(os.path.join(out_dir, "step_profile.json"), result)
  return result


def main(argv):
  del argv
  quick = _QUICK.value
  resolutions = [int(r) for r in _RES.value] or ([224, 160] if quick else [224, 160, 336])
  min_time = 3.0 if quick else _MIN_TIME.value
  with_torch = not _SKIP_TORCH.value
  if with_torch:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(os.cpu_count() or 1)
  profile_res = int(_RES.value[0]) if _RES.value else 224
  profile_timing = (0.5, 5) if quick else (2.0, 8)  # Seconds per timing, rounds.
  if _ABLATIONS.value:
    payload = ablations_main(quick, with_torch)
    if _PROFILE.value:
      payload["profile"] = profile_main(_PROFILE.value, profile_res, with_torch, *profile_timing)
    if with_torch:
      import torch  # pylint: disable=g-import-not-at-top
      payload["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
    common.write_json(_OUT.value, payload)
    return
  peak_before = common.matmul_peak()
  peak = peak_before["best_gflops"]
  rows, eval_rows = [], []
  for variant in _VARIANTS.value:
    for res in resolutions:
      if quick and variant != _VARIANTS.value[0] and res != 224:
        continue
      r, e = bench_pair(variant, res, _BATCH.value, peak, min_time, with_torch)
      rows += r
      eval_rows.append(e)
      print(r, flush=True)
  ratios = []
  for r in rows:
    if r["impl"] == "rsvlm_jax":
      other = [o for o in rows if o["impl"] == "open_clip" and o["variant"] == r["variant"] and
               o["resolution"] == r["resolution"]]
      if other:
        ratios.append({"variant": r["variant"], "resolution": r["resolution"],
                       "speed_ratio_vs_open_clip": r["images_per_s"] / other[0]["images_per_s"]})
  options = speed_options(_VARIANTS.value[0], 224, _BATCH.value, peak, min_time)
  peak_after = common.matmul_peak()
  peak = max(peak, peak_after["best_gflops"])
  for r in rows + options:  # MFU against the higher of the two peaks.
    r["mfu"] = r["gflops_per_step"] * r["images_per_s"] / r.get("batch", _BATCH.value) / peak
  payload = {"peak_gflops": peak, "peak_before": peak_before, "peak_after": peak_after, "rows": rows,
             "ratios": ratios, "eval": eval_rows, "retrieval_10k": retrieval_speed(), "quick": quick,
             "text_len": _TEXT_LEN.value, "vocab": _VOCAB.value, "speed_options": options}
  if _PROFILE.value:
    payload["profile"] = profile_main(_PROFILE.value, profile_res, with_torch, *profile_timing)
  over = [r for r in rows + options if r["mfu"] > 1.0]
  if over:
    payload["error"] = f"{len(over)} rows above MFU 1.0: the measured peak ({peak:.1f} GFLOP/s) is not a peak"
  if with_torch:
    import torch  # pylint: disable=g-import-not-at-top
    payload["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
  common.write_json(_OUT.value, payload)
  if over:
    raise SystemExit(f"bench.train_step: {payload['error']} (rows: {over})")


if __name__ == "__main__":
  app.run(main)
