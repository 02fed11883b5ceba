"""Benchmark helpers: timing with warm-up, the machine's matmul peak, JSON output."""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def timeit(fn: Callable[[], object], *, warmup: int = 1, min_time: float = 2.0, max_iters: int = 1000) -> float:
  """Seconds per call (median-free mean over >= min_time), after `warmup` calls; blocks on results."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  n, t0 = 0, time.perf_counter()
  while True:
    jax.block_until_ready(fn())
    n += 1
    elapsed = time.perf_counter() - t0
    if elapsed >= min_time or n >= max_iters:
      return elapsed / n


def step_times(fn: Callable[[], object], *, warmup: int = 1, min_time: float = 2.0, max_iters: int = 1000,
               min_iters: int = 3) -> list[float]:
  """Seconds of each call (at least `min_iters` calls and `min_time` seconds), after `warmup` calls."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  out, t_start = [], time.perf_counter()
  while len(out) < max_iters:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    out.append(time.perf_counter() - t0)
    if time.perf_counter() - t_start >= min_time and len(out) >= min_iters:
      break
  return out


def spread(times: list[float]) -> dict:
  """Median, best, 10th/90th percentile and count of per-step seconds (the noise, visible)."""
  t = np.asarray(times, np.float64)
  return {"median_s": float(np.median(t)), "min_s": float(t.min()), "p10_s": float(np.percentile(t, 10)),
          "p90_s": float(np.percentile(t, 90)), "num_steps": int(t.size)}


def matmul_peak_gflops(n: int = 2048, dtype=jnp.float32, min_time: float = 2.0) -> float:
  """Measured GFLOP/s of a jit'd n x n matmul (best per-call time)."""
  return matmul_peak(shapes=((n, n, n),), dtype=dtype, min_time=min_time)["best_gflops"]


def matmul_peak(shapes=((2048, 2048, 2048), (3072, 3072, 3072), (4096, 4096, 4096), (1576, 768, 3072),
                        (1576, 3072, 768), (3152, 768, 768)), dtype=jnp.float32, min_time: float = 2.0) -> dict:
  """The machine's practical matmul peak: the best GFLOP/s over square sizes and the model's own shapes
  ((batch x tokens, width) @ (width, 4 width) and back, as in a ViT-B MLP), each warm and timed by its best
  call, in this process (so with the measured step's thread settings). {"best_gflops", "by_shape"}."""
  by_shape = {}
  for m, k, n in shapes:
    a = jax.random.normal(jax.random.key(0), (m, k), dtype)
    b = jax.random.normal(jax.random.key(1), (k, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    best = min(step_times(lambda: f(a, b), warmup=2, min_time=min_time))
    by_shape[f"{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
  return {"best_gflops": max(by_shape.values()), "by_shape": by_shape, "dtype": jnp.dtype(dtype).name}


def write_json(path: str, payload: dict) -> None:
  payload = dict(payload)
  payload.setdefault("machine", {"platform": platform.platform(), "cpus": os.cpu_count(),
                                 "jax": jax.__version__, "backend": jax.default_backend(),
                                 "device": jax.devices()[0].device_kind})
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(payload, f, indent=2)
  print(json.dumps(payload, indent=2))
