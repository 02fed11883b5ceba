"""Benchmark helpers: timing with warm-up, the machine's matmul peak, JSON output."""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Callable

import jax
import jax.numpy as jnp


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


def matmul_peak_gflops(n: int = 2048, dtype=jnp.float32, min_time: float = 2.0) -> float:
  """Measured GFLOP/s of a jit'd n x n matmul (the machine's practical peak for MFU)."""
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  f = jax.jit(lambda x, y: x @ y)
  return 2 * n ** 3 / timeit(lambda: f(a, b), min_time=min_time) / 1e9


def write_json(path: str, payload: dict) -> None:
  payload = dict(payload)
  payload.setdefault("machine", {"platform": platform.platform(), "cpus": os.cpu_count(),
                                 "jax": jax.__version__, "backend": jax.default_backend(),
                                 "device": jax.devices()[0].device_kind})
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(payload, f, indent=2)
  print(json.dumps(payload, indent=2))
