"""Reproducibility record written into the workdir: config, git revision, package versions, devices."""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "tensorflow-datasets",
            "ml-collections", "einops", "numpy", "sentencepiece", "array-record", "pillow", "rsvlm_jax")


def git_revision(path: str | None = None) -> dict[str, str]:
  path = path or os.path.dirname(os.path.abspath(__file__))
  def run(*args):
    try:
      return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
      return ""
  return {"commit": run("rev-parse", "HEAD") or "unknown", "dirty": bool(run("status", "--porcelain"))}


def package_versions() -> dict[str, str]:
  out = {}
  for name in PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = "not installed"
  return out


def write(workdir: str, config) -> None:
  """Writes config.json and run_info.json (process 0 only)."""
  if jax.process_index() != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  info = {
      "git": git_revision(), "packages": package_versions(), "python": sys.version.split()[0],
      "platform": platform.platform(), "argv": sys.argv,
      "devices": {"count": jax.device_count(), "local": jax.local_device_count(),
                  "processes": jax.process_count(), "kind": jax.devices()[0].device_kind},
  }
  with open(os.path.join(workdir, "run_info.json"), "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
