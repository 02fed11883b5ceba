"""Where a training step's time goes, ours against open_clip (used by `python -m bench.train_step --profile DIR`).

Four views of one step of the same two-tower model (see bench/train_step.py):
  * sub-steps, timed separately in both implementations, interleaved in rounds: image tower forward+backward,
    text tower forward+backward, the contrastive loss forward+backward, the optimizer update (global-norm clip +
    AdamW), and the whole step (the parts need not add up: the whole step overlaps and fuses across them);
  * XLA's ops: a jax.profiler trace of a few steps of our compiled step (written to DIR, readable with
    TensorBoard/XProf), its per-op events summed over threads ("thread time") and named by the compiled HLO:
    opcode or fusion kind, and the model component and pass (forward, backward, optimizer) from the op's
    source name, the same op of every layer added up;
  * PyTorch's ops: torch.profiler's table of open_clip's step (self CPU time per aten op);
  * the attention core alone (forward+backward at the image tower's shapes) in each implementation.
Thread time counts an op once per thread that ran it, so on a machine of N cores the totals can exceed
N x wall time; the shares, not the absolute figures, are what compares.
"""
from __future__ import annotations

import collections
import glob
import os
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bench import common
from rsvlm_jax.losses import alignment
from rsvlm_jax.models import rsvlm

_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*\S+(?:\[[^\]]*\])?(?:\{[^}]*\})?\s+([\w\-]+)\(")
_KIND = re.compile(r"kind=(k\w+)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_COMP = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
# Profiler events on the XLA threads that are not ops.
_NOT_OPS = ("ThunkExecutor", "ThreadpoolListener", "end: ")


def hlo_ops(hlo_text: str) -> dict[str, dict]:
  """Instruction name -> {"opcode", "op_name"} from compiled HLO text. Fusions are named by kind
  ("fusion:kLoop"), custom and output fusions also by their root ("fusion:kCustom/dot": XLA CPU's YNNPACK
  fusions); a fusion without a source name of its own takes its fused computation's."""
  ops, calls, comp_names, roots, comp = {}, {}, {}, {}, None
  for line in hlo_text.splitlines():
    h = _COMP.match(line)
    if h:
      comp = h.group(1)
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    name, opcode = m.groups()
    if opcode == "fusion":
      k = _KIND.search(line)
      opcode = f"fusion:{k.group(1)}" if k else opcode
      c = _CALLS.search(line)
      if c:
        calls[name] = c.group(1)
    n = _OP_NAME.search(line)
    op_name = n.group(1) if n else ""
    ops[name] = {"opcode": opcode, "op_name": op_name}
    if comp is not None and line.lstrip().startswith("ROOT"):
      roots[comp] = m.group(2)
    if op_name and comp is not None:
      # The root's name wins (it is what the fusion computes); else the first named instruction.
      if line.lstrip().startswith("ROOT") or comp not in comp_names:
        comp_names[comp] = op_name
  for name, called in calls.items():
    if not ops[name]["op_name"]:
      ops[name]["op_name"] = comp_names.get(called, "")
    if ops[name]["opcode"] not in ("fusion:kLoop", "fusion:kInput") and called in roots:
      ops[name]["opcode"] += "/" + roots[called]  # What a custom or output fusion wraps: dot, convolution...
  return ops


def classify(op_name: str) -> tuple[str, str]:
  """(pass, component) of an op from its source name: pass "forward", "backward" or "optimizer/other";
  component e.g. "image/attention", "image/mlp", "text/attention", "loss", "optimizer"; ops XLA added
  without a source name are ("?", "unattributed")."""
  if not op_name:
    return "?", "unattributed"
  if "transpose(jvp(" in op_name:
    phase = "backward"
  elif "jvp(" in op_name:
    phase = "forward"
  else:
    phase = "optimizer/other"
  if "/img/" in op_name or "encode_image" in op_name or "/img_proj/" in op_name:
    tower = "image"
  elif "/txt/" in op_name or "encode_text" in op_name or "/txt_proj/" in op_name:
    tower = "text"
  else:
    return phase, ("loss" if phase != "optimizer/other" else "optimizer")
  for key, part in (("/head/", "map_head"), ("/attn/", "attention"), ("/mlp/", "mlp"), ("LayerNorm", "layernorm"),
                    ("norm", "layernorm"), ("/embedding/", "embedding"), ("_proj/", "projection")):
    if key in op_name:
      return phase, f"{tower}/{part}"
  return phase, f"{tower}/other"


def op_thread_times(xplane_path: str) -> dict[str, float]:
  """HLO instruction name -> summed event nanoseconds over the XLA threads of a jax.profiler trace."""
  from jax import profiler  # pylint: disable=g-import-not-at-top
  totals = collections.Counter()
  for plane in profiler.ProfileData.from_file(xplane_path).planes:
    if not plane.name.startswith("/host:CPU"):
      continue
    for line in plane.lines:
      if not line.name.startswith("tf_XLA"):
        continue
      for e in line.events:
        if not e.name.startswith(_NOT_OPS):
          totals[e.name] += e.duration_ns
  return dict(totals)


def source_key(op_name: str) -> str:
  """An op's source name with the jit prefix dropped and layer numbers folded ("block7" -> "block*"), so the
  same op of every layer adds up."""
  return re.sub(r"block\d+", "block*", op_name.split("/", 1)[-1] if op_name.startswith("jit(") else op_name)


def summarize_ops(times_ns: dict[str, float], ops: dict[str, dict], steps: int, top: int = 15) -> dict:
  """Thread time per step (ms, and share of all ops) of the top ops, each op summed over the layers
  (same opcode and source name), and the totals by opcode, component and pass."""
  total = sum(times_ns.values()) or 1.0
  ms = lambda ns: ns / 1e6 / steps
  by = {k: collections.Counter() for k in ("opcode", "component", "pass", "op")}
  counts = collections.Counter()
  for name, ns in times_ns.items():
    info = ops.get(name, {"opcode": "?", "op_name": ""})
    phase, comp = classify(info["op_name"])
    by["opcode"][info["opcode"]] += ns
    by["component"][comp] += ns
    by["pass"][phase] += ns
    key = (info["opcode"], comp, phase, source_key(info["op_name"]) or name)
    by["op"][key] += ns
    counts[key] += 1
  rows = [{"opcode": k[0], "component": k[1], "pass": k[2], "source": k[3], "instructions": counts[k],
           "thread_ms_per_step": ms(v), "share": v / total} for k, v in by["op"].most_common(top)]
  table = lambda c: [{"name": k, "thread_ms_per_step": ms(v), "share": v / total} for k, v in c.most_common()]
  return {"thread_ms_per_step": ms(total), "num_instructions": len(times_ns), "top_ops": rows,
          "by_opcode": table(by["opcode"]), "by_component": table(by["component"]), "by_pass": table(by["pass"])}


def jax_trace(built: dict, out_dir: str, steps: int = 3) -> dict:
  """Traces `steps` steps of build_ours()'s compiled step into out_dir; the op summary of the trace."""
  compiled, data = built["compiled"], built["data"]
  state = jax.tree.map(jnp.copy, built["state"])
  state, loss = compiled(state, data)  # Warm.
  jax.block_until_ready(loss)
  trace_dir = os.path.join(out_dir, "jax_trace")
  jax.profiler.start_trace(trace_dir)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, loss = compiled(state, data)
    jax.block_until_ready(loss)
  wall = (time.perf_counter() - t0) / steps
  jax.profiler.stop_trace()
  path = max(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True), key=os.path.getmtime)
  hlo = compiled.as_text()
  with open(os.path.join(out_dir, "jax_step.hlo.txt"), "w") as f:
    f.write(hlo)
  out = summarize_ops(op_thread_times(path), hlo_ops(hlo), steps)
  out.update({"trace": path, "steps": steps, "wall_s_per_step_traced": wall})
  return out


def torch_profile(oc: dict, steps: int = 3, top: int = 15) -> dict:
  """torch.profiler over `steps` steps of build_open_clip()'s step: top aten ops by self CPU time."""
  import torch  # pylint: disable=g-import-not-at-top
  oc["step"]()  # Warm.
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    t0 = time.perf_counter()
    for _ in range(steps):
      oc["step"]()
    wall = (time.perf_counter() - t0) / steps
  events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
  total = sum(e.self_cpu_time_total for e in events) or 1.0
  events.sort(key=lambda e: -e.self_cpu_time_total)
  rows = [{"op": e.key, "calls_per_step": e.count / steps, "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
           "share": e.self_cpu_time_total / total} for e in events[:top]]
  return {"self_cpu_ms_per_step": total / 1e3 / steps, "top_ops": rows, "steps": steps,
          "wall_s_per_step_traced": wall}


def time_interleaved(fns: dict[str, dict], rounds: int, min_time: float) -> dict[str, dict]:
  """{impl: {part: fn}} -> {impl: {part: spread of per-call seconds}}: every fn warmed, then timed in rounds
  (each round: every part, each implementation in turn), so the machine's load hits both alike."""
  times = {impl: {part: [] for part in parts} for impl, parts in fns.items()}
  for parts in fns.values():
    for fn in parts.values():
      jax.block_until_ready(fn())
  for _ in range(rounds):
    for part in next(iter(fns.values())):
      for impl, parts in fns.items():
        if part in parts:
          times[impl][part] += common.step_times(parts[part], warmup=0, min_time=min_time, min_iters=1)
  return {impl: {part: common.spread(ts) for part, ts in parts.items()} for impl, parts in times.items()}


def substeps_ours(built: dict) -> dict:
  """Each part of our step, jit'd on its own (image tower, text tower and loss forward+backward, the
  optimizer update, the whole step): {part: no-argument fn}."""
  model, tx, data = built["model"], built["tx"], built["data"]
  params = jax.tree.map(jnp.copy, built["state"][0])
  split = lambda keys: ({k: v for k, v in params.items() if k in keys},
                        {k: v for k, v in params.items() if k not in keys})
  img_p, img_rest = split(("img", "img_proj"))
  txt_p, txt_rest = split(("txt", "txt_proj"))

  def tower_grad(method, rest, x):
    def f(p):
      z = model.apply({"params": {**rest, **p}}, x, method=method)
      z = z[0] if isinstance(z, tuple) else z
      return jnp.sum(z * jnp.linspace(-1.0, 1.0, z.size).reshape(z.shape))
    return jax.jit(jax.grad(f))

  img_g = tower_grad(rsvlm.Model.encode_image, img_rest, data["image"])
  txt_g = tower_grad(rsvlm.Model.encode_text, txt_rest, data["text"])
  zimg = model.apply({"params": params}, data["image"], method=rsvlm.Model.encode_image)[0]
  ztxt = model.apply({"params": params}, data["text"], method=rsvlm.Model.encode_text)
  loss_g = jax.jit(jax.grad(lambda zi, zt, s, b: alignment.global_contrastive(zi, zt, s, b, kind="softmax")[0],
                            argnums=(0, 1, 2, 3)))
  grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), params)
  opt = {"s": jax.tree.map(jnp.copy, (params, tx.init(params)))}  # Donated by each update.

  def update(state, g):
    p, o = state
    upd, o = tx.update(g, o, p)
    return optax.apply_updates(p, upd), o

  update = jax.jit(update, donate_argnums=(0,))

  def run_update():
    opt["s"] = update(opt["s"], grads)
    return opt["s"][1]

  full = {"s": jax.tree.map(jnp.copy, built["state"])}

  def run_full():
    full["s"], loss = built["compiled"](full["s"], data)
    return loss

  return {"image_tower_fwd_bwd": lambda: img_g(img_p), "text_tower_fwd_bwd": lambda: txt_g(txt_p),
          "loss_fwd_bwd": lambda: loss_g(zimg, ztxt, params["logit_scale"], params["logit_bias"]),
          "optimizer_update": run_update, "full_step": run_full}


def substeps_open_clip(oc: dict) -> dict:
  """The same parts of open_clip's step (eager PyTorch): {part: no-argument fn}."""
  import torch  # pylint: disable=g-import-not-at-top
  clip, opt = oc["clip"], oc["opt"]
  params = list(clip.parameters())

  def tower(encode, x):
    def run():
      opt.zero_grad(set_to_none=True)
      z = encode(x, normalize=True)
      (z * torch.linspace(-1.0, 1.0, z.numel()).reshape(z.shape)).sum().backward()
    return run

  with torch.no_grad():
    zi0 = clip.encode_image(oc["images"], normalize=True)
    zt0 = clip.encode_text(oc["text"], normalize=True)

  def loss_run():
    zi, zt = zi0.clone().requires_grad_(True), zt0.clone().requires_grad_(True)
    logits = clip.logit_scale.exp() * zi @ zt.T
    loss = (torch.nn.functional.cross_entropy(logits, oc["labels"]) +
            torch.nn.functional.cross_entropy(logits.T, oc["labels"])) / 2
    loss.backward()

  oc["step"]()
  saved = [p.grad for p in params]  # Every parameter's gradient, re-attached before each update (the towers'
                                    # runs reset them).

  def opt_run():
    for p, g in zip(params, saved):
      p.grad = g
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()

  return {"image_tower_fwd_bwd": tower(clip.encode_image, oc["images"]),
          "text_tower_fwd_bwd": tower(clip.encode_text, oc["text"]), "loss_fwd_bwd": loss_run,
          "optimizer_update": opt_run, "full_step": oc["step"]}


def attention_cores(batch: int, tokens: int, heads: int, head_dim: int, with_torch: bool) -> dict:
  """Forward+backward of one attention core (q, k, v [B, T, N, H] -> out) in each implementation the step can
  use: jax.nn.dot_product_attention (our fused_attention=True), flax's nn.dot_product_attention
  (fused_attention=False) and, with torch, PyTorch's scaled_dot_product_attention (open_clip's)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  q, k, v, ct = (jnp.asarray(rng.normal(size=(batch, tokens, heads, head_dim)), jnp.float32) for _ in range(4))
  grad = lambda f: jax.jit(jax.grad(lambda q, k, v: jnp.sum(f(q, k, v) * ct), argnums=(0, 1, 2)))
  fused, unfused = grad(jax.nn.dot_product_attention), grad(nn.dot_product_attention)
  fns = {"jax.nn.dot_product_attention (fused_attention=True)": lambda: fused(q, k, v),
         "flax nn.dot_product_attention (fused_attention=False)": lambda: unfused(q, k, v)}
  if with_torch:
    import torch  # pylint: disable=g-import-not-at-top
    tq, tk, tv, tct = (torch.tensor(np.asarray(x)).transpose(1, 2).contiguous() for x in (q, k, v, ct))
    for x in (tq, tk, tv):
      x.requires_grad_(True)

    def sdpa():
      for x in (tq, tk, tv):
        x.grad = None
      (torch.nn.functional.scaled_dot_product_attention(tq, tk, tv) * tct).sum().backward()

    fns["torch scaled_dot_product_attention (open_clip)"] = sdpa
  return fns


def profile(build_ours, build_open_clip, out_dir: str, *, min_time: float = 2.0, rounds: int = 3, steps: int = 3,
            attention_shape: tuple[int, int, int, int] | None = None, log=print) -> dict:
  """All three views (open_clip's only when build_open_clip is given), and with attention_shape (batch, tokens,
  heads, head dim) the attention cores; the trace and HLO go to out_dir."""
  os.makedirs(out_dir, exist_ok=True)
  load = lambda: os.getloadavg()[0] if hasattr(os, "getloadavg") else None
  result = {"load_avg_1min_at_start": load()}
  built = build_ours()
  result.update({"out_dir": out_dir, "xla_ops": jax_trace(built, out_dir, steps)})
  log({"xla_ops_top": result["xla_ops"]["top_ops"][:5]})
  fns = {"rsvlm_jax": substeps_ours(built)}
  oc = build_open_clip() if build_open_clip is not None else None
  if oc is not None:
    fns["open_clip"] = substeps_open_clip(oc)
  sub = time_interleaved(fns, rounds, min_time)
  result["substeps"] = sub
  if oc is not None:
    result["substeps_ours_over_open_clip_time"] = {
        part: sub["rsvlm_jax"][part]["median_s"] / sub["open_clip"][part]["median_s"] for part in sub["rsvlm_jax"]}
  log({"substeps_median_s": {impl: {p: round(v["median_s"], 4) for p, v in parts.items()}
                             for impl, parts in sub.items()}})
  del fns, built
  if oc is not None:
    result["torch_ops"] = torch_profile(oc, steps)
  if attention_shape is not None:
    cores = time_interleaved({"attention": attention_cores(*attention_shape, with_torch=oc is not None)}, rounds,
                             min_time)["attention"]
    result["attention_core"] = {"shape_b_t_n_h": list(attention_shape), "seconds": cores}
    log({"attention_core_median_s": {k: v["median_s"] for k, v in cores.items()}})
  result["load_avg_1min_at_end"] = load()
  return result
