"""Multi-process setup on JAX's own runtime: `jax.distributed.initialize` from config or environment.

Sources, in order: config.distributed (coordinator_address, num_processes, process_id), the
environment (RSVLM_COORDINATOR, RSVLM_NUM_PROCESSES, RSVLM_PROCESS_ID; set by launch/local.sh),
then JAX's own auto-detection (TPU VM pods, SLURM jobs with more than one task), used when
config.distributed.auto is set or RSVLM_DISTRIBUTED_AUTO=1 (launch/tpu_pod.sh sets it) or SLURM has >1 task.
"""
from __future__ import annotations

import os

import jax
from absl import logging

_initialized = False


def _auto_detectable(cfg) -> bool:
  if cfg.get("auto") or os.environ.get("RSVLM_DISTRIBUTED_AUTO") == "1":
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    return True
  return bool(os.environ.get("TPU_WORKER_HOSTNAMES") and "," in os.environ["TPU_WORKER_HOSTNAMES"])


def maybe_initialize(cfg=None) -> None:
  """Initializes the JAX cluster once if this process is part of one; no-op for a single process."""
  global _initialized
  if _initialized:
    return
  cfg = dict(cfg or {})
  coordinator = cfg.get("coordinator_address") or os.environ.get("RSVLM_COORDINATOR")
  if coordinator:
    num = int(cfg.get("num_processes") or os.environ["RSVLM_NUM_PROCESSES"])
    pid = cfg.get("process_id", -1)
    pid = int(pid if pid is not None and pid >= 0 else os.environ["RSVLM_PROCESS_ID"])
    # CPU collectives across processes (used by launch/local.sh). This only configures the CPU client, and
    # must not query the backend: that would initialise XLA before `jax.distributed.initialize`.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num, process_id=pid)
  elif _auto_detectable(cfg):
    jax.distributed.initialize()
  else:
    return
  _initialized = True
  logging.info("JAX distributed: process %d of %d, %d global devices", jax.process_index(), jax.process_count(),
               jax.device_count())
