r"""Entry point: `python -m rsvlm_jax.main --config=configs/demo.py[:args] --workdir=DIR [--mode=...]`.

Modes: train (train only), eval (evaluate the latest checkpoint), train_and_eval (default).
Restarting with the same workdir resumes from the newest checkpoint.

Exit status: 0 when the job finished, or when SIGTERM (a cluster's preemption) stopped training after saving the
current step; 130 when Ctrl-C (SIGINT) stopped it the same way (a second Ctrl-C aborts without saving, also
130); 128 + the signal's number (143 for SIGTERM) when a signal stopped the evaluation (the checkpoint is
saved; metrics.json is not written); 2 for a config or workdir the run cannot use (one line naming the key:
nothing is written); 1 when training fails (a non-finite loss, a checkpoint that cannot be written).
"""
from __future__ import annotations

import signal
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


def _fail(message: str, status: int) -> None:
  print(f"main: error: {message}", file=sys.stderr, flush=True)
  sys.exit(status)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Imported here so `--help` and flag errors stay fast.
  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import run_lock  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  try:
    result = run(_CONFIG.value, _WORKDIR.value, _MODE.value, library_logs=_LIBRARY_LOGS.value)
  except (config_schema.ConfigError, checkpoint_lib.CheckpointMismatchError, run_lock.WorkdirLockedError) as e:
    _fail(str(e), 2)
  except (trainer_lib.NonFiniteLossError, checkpoint_lib.CheckpointWriteError) as e:
    _fail(str(e), 1)
  except KeyboardInterrupt as e:
    print(f"main: {e or 'interrupted'}; the complete checkpoints in {_WORKDIR.value} are kept", file=sys.stderr,
          flush=True)
    sys.exit(128 + signal.SIGINT)
  if result.get("preempted"):
    signum = signal.Signals[result["signal"]] if result.get("signal") else signal.SIGTERM
    if result.get("interrupted") == "evaluation":
      sys.exit(128 + signum)
    if signum == signal.SIGINT:
      sys.exit(128 + signum)


def _fail_early(argv: list[str]) -> None:
  """Exits (status 2, one line) when the config file refuses its args or an override names no key of it."""
  from rsvlm_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  spec = config_lib.config_spec_from_argv(argv)
  if not spec:
    return
  try:
    config = config_lib.load_config(spec)
  except (ValueError, KeyError, FileNotFoundError) as e:  # The config's own refusal of an arg, naming it.
    _fail(f"--config={spec}: {e.args[0] if isinstance(e, KeyError) and e.args else e}", 2)
  except Exception:  # pylint: disable=broad-except
    return  # A broken config file is reported by the normal flag parsing, with its traceback.
  message = config_lib.unknown_override(config, argv)
  if message:
    _fail(message, 2)


if __name__ == "__main__":
  _fail_early(sys.argv)
  app.run(main)
