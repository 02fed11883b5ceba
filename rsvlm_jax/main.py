r"""Entry point: `python -m rsvlm_jax.main --config=configs/demo.py[:args] --workdir=DIR [--mode=...]`.

Modes: train (train only), eval (evaluate the latest checkpoint), train_and_eval (default).
Restarting with the same workdir resumes from the newest checkpoint.
"""
from __future__ import annotations

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from rsvlm_jax.job import run  # Re-exported: `main.run(config, workdir)` from Python.

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (file.py[:args]).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the run record.")
_MODE = flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"], "What to run.")
_LIBRARY_LOGS = flags.DEFINE_bool("library_logs", False, "Also show orbax's INFO logs (checkpoint internals).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  run(_CONFIG.value, _WORKDIR.value, _MODE.value, library_logs=_LIBRARY_LOGS.value)


def _fail_on_unknown_override(argv: list[str]) -> None:
  """Exits naming the key when a --config.KEY=VALUE override names no key of the config."""
  from rsvlm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  spec = config_lib.config_spec_from_argv(argv)
  if not spec or not any(a.startswith("--config.") for a in argv):
    return
  try:
    config = config_lib.load_config(spec)
  except Exception:  # pylint: disable=broad-except
    return  # A broken config file is reported by the normal flag parsing, with its traceback.
  message = config_lib.unknown_override(config, argv)
  if message:
    sys.exit(f"main: {message}")


if __name__ == "__main__":
  _fail_on_unknown_override(sys.argv)
  app.run(main)
