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
from rsvlm_jax.models import vit

_OUT = flags.DEFINE_string("out", "bench_results/train_step.json", "Output JSON.")
_QUICK = flags.DEFINE_bool("quick", False, "224 px and one small bucket, short timing windows.")
_VARIANTS = flags.DEFINE_list("variants", ["S/16", "B/16"], "ViT variants.")
_RES = flags.DEFINE_list("resolutions", [], "Resolutions (default: 224 and the DRIS buckets 160/224/336).")
_BATCH = flags.DEFINE_integer("batch", 8, "Images per step (fits this 2-core, 24 GiB machine).")
_TEXT_LEN = flags.DEFINE_integer("text_len", 32, "Caption length (tokens) for both implementations.")
_VOCAB = flags.DEFINE_integer("vocab", 49408, "Vocabulary size (open_clip's default tokenizer size).")
_MIN_TIME = flags.DEFINE_float("min_time", 6.0, "Seconds timed per measurement (each of 2 alternations).")
_SKIP_TORCH = flags.DEFINE_bool("skip_open_clip", False, "Only our rows (e.g. where torch is not installed).")

# Text towers as open_clip's configs give them (width, heads); depth 12 for both.
TEXT = {"S": (384, 6), "B": (512, 8), "L": (768, 12)}


def tower_dims(variant: str) -> dict:
  v = vit.decode_variant(variant)
  name = variant.split("/")[0]
  t_width, t_heads = TEXT.get(name, (v["width"], v["num_heads"]))
  return {"vit": v, "text_width": t_width, "text_heads": t_heads, "embed_dim": t_width}


# -- ours -----------------------------------------------------------------------------------------------
def make_ours(variant: str, res: int, batch: int, *, dtype=jnp.float32, fused=True, remat=False):
  """(compiled step, state, batch arrays, flops per step, jit'd image encoder) for our two-tower step."""
  d = tower_dims(variant)
  grid = res // d["vit"]["patch_size"]
  model = rsvlm.Model(
      vocab_size=_VOCAB.value,
      image={"variant": variant, "posemb_grid": (grid, grid), "pool_type": "gap", "remat": remat,
             "fused_attention": fused},
      text={"width": d["text_width"], "depth": 12, "num_heads": d["text_heads"], "mlp_dim": 4 * d["text_width"],
            "max_len": _TEXT_LEN.value, "remat": remat},
      decoder=None, embed_dim=d["embed_dim"], dtype=dtype)
  rng = np.random.default_rng(0)
  data = {"image": jnp.asarray(rng.normal(size=(batch, res, res, 3)), jnp.float32),
          "text": jnp.asarray(rng.integers(1, _VOCAB.value, size=(batch, _TEXT_LEN.value)), jnp.int32)}
  params = jax.jit(model.init)(jax.random.key(0), data)["params"]
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, weight_decay=0.1))
  state = (params, tx.init(params))

  def step(state, data):
    params, opt_state = state

    def loss_fn(p):
      _, out = model.apply({"params": p}, data, train=True)
      loss, _ = alignment.global_contrastive(out["zimg"], out["ztxt"], out["logit_scale"], out["logit_bias"],
                                             kind="softmax")
      return loss

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  jitted = jax.jit(step, donate_argnums=(0,))
  compiled = jitted.lower(state, data).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  encode = jax.jit(lambda p, x: model.apply({"params": p}, x, method=rsvlm.Model.encode_image)[0])
  return compiled, state, data, float(cost["flops"]), encode


# -- open_clip ------------------------------------------------------------------------------------------
def make_open_clip(variant: str, res: int, batch: int):
  """(step closure, torch-counted flops) for the same two-tower model in open_clip."""
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
      text_cfg=oc_model.CLIPTextCfg(context_length=_TEXT_LEN.value, vocab_size=_VOCAB.value,
                                    width=d["text_width"], heads=d["text_heads"], layers=12))
  clip.train()
  opt = torch.optim.AdamW(clip.parameters(), lr=1e-4, weight_decay=0.1)
  images = torch.randn(batch, 3, res, res)
  text = torch.randint(1, _VOCAB.value, (batch, _TEXT_LEN.value))
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

  counter = flop_counter.FlopCounterMode(display=False)
  with counter:
    step()
  return step, counter.get_total_flops()


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


def main(argv):
  del argv
  quick = _QUICK.value
  resolutions = [int(r) for r in _RES.value] or ([224, 160] if quick else [224, 160, 336])
  min_time = 3.0 if quick else _MIN_TIME.value
  with_torch = not _SKIP_TORCH.value
  if with_torch:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(os.cpu_count() or 1)
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
