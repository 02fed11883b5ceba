"""Shared test fixtures: a tiny synthetic scene set built once per session through the real CLI path."""
from __future__ import annotations

import os

import pytest

# XLA's CPU backend without LLVM's optimisation passes: the suite's tiny models spend far more time compiling
# than running, and this roughly halves the compile time. What a test computes is compared within one setting
# (or to an independent reference with a tolerance), never to numbers made with other flags.
FAST_COMPILE_XLA_FLAGS = "--xla_backend_optimization_level=0"


def xla_flags(devices: int) -> str:
  """XLA_FLAGS for a test process (or a process a test launches) with `devices` fake CPU devices."""
  return f"--xla_force_host_platform_device_count={devices} {FAST_COMPILE_XLA_FLAGS}"


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
  """Builds synthetic_scenes/tiny (48/16/16 examples) with the builder the demo uses."""
  import rsvlm_datasets  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  rsvlm_datasets.import_builder("synthetic_scenes/tiny")
  builder = tfds.builder("synthetic_scenes/tiny", data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  return data_dir


def tiny_config(data_dir: str, arg: str = "", **overrides):
  """The demo config in runlocal mode on the tiny set, with `overrides` applied (dotted keys)."""
  from configs import demo  # pylint: disable=g-import-not-at-top
  c = demo.get_config(",".join(x for x in ("runlocal=True", f"data_dir={data_dir}", arg) if x))
  c.tensorboard = True
  c.async_checkpoint = False
  from rsvlm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  for k, v in overrides.items():  # A typo in a test override fails loudly instead of adding a key nobody reads.
    config_lib.set_key(c, k, v, "tiny_config override")
  return c


def unwritable_dir(tmp_path) -> str | None:
  """A folder this process cannot write in (root ignores mode bits: then /sys/fs), or None."""
  d = tmp_path / "ro"
  d.mkdir()
  d.chmod(0o555)
  try:
    (d / "probe").write_text("")
  except OSError:
    return str(d)
  d.chmod(0o755)
  try:
    open(os.path.join("/sys/fs", "rsvlm_probe"), "w").close()
  except OSError:
    return "/sys/fs"
  return None


def read_jsonl(path: str) -> list[dict]:
  import json  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


__all__ = ["tiny_data_dir", "tiny_config", "read_jsonl", "unwritable_dir", "xla_flags", "os"]
