r"""Entry point: `python -m rsvlm_jax.main --config=configs/demo.py[:args] --workdir=DIR [--mode=...]`.

Modes: train (train only), eval (evaluate the latest checkpoint), train_and_eval (default).
Restarting with the same workdir resumes from the newest checkpoint.

Exit status: 0 when the job finished, or when SIGTERM (a cluster's preemption) stopped training after saving the
current step; 130 when Ctrl-C (SIGINT) stopped it the same way (a second Ctrl-C aborts without saving, also
130); 128 + the signal's number (143 for SIGTERM) when a signal stopped the evaluation (the checkpoint is
saved; metrics.json is not written); 2 for a bad flag, or a config or workdir the run cannot use (one line
`main: error: ...` naming the flag or key: nothing is written); 1 when training fails (a non-finite loss, a
checkpoint that cannot be written; another error inside the run shows its traceback).
"""
from __future__ import annotations

import signal
import sys
import traceback

from absl import flags

from rsvlm_jax import config as config_lib
from rsvlm_jax.job import run  # Re-exported: `main.run(config, workdir)` from Python.
from rsvlm_jax.runtime import cli

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
_CONFIG = config_lib.define_config_flag("config", "Config file (file.py[:args]).", flag_values=FLAGS,
                                        lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the run record.",
                               flag_values=FLAGS)
_MODE = flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"], "What to run.",
                          flag_values=FLAGS)
_LIBRARY_LOGS = flags.DEFINE_bool("library_logs", False, "Also show orbax's INFO logs (checkpoint internals).",
                                  flag_values=FLAGS)
flags.mark_flags_as_required(["config", "workdir"], flag_values=FLAGS)


def main(argv):
  del argv  # cli.run refuses positional arguments.
  # Imported here so `--help` and flag errors stay fast.
  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.runtime import run_lock  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  try:
    result = run(_CONFIG.value, _WORKDIR.value, _MODE.value, library_logs=_LIBRARY_LOGS.value)
  except (config_schema.ConfigError, checkpoint_lib.CheckpointMismatchError, run_lock.WorkdirLockedError) as e:
    cli.fail("main", str(e))
  except (trainer_lib.NonFiniteLossError, checkpoint_lib.CheckpointWriteError) as e:
    cli.fail("main", str(e), status=1)
  except KeyboardInterrupt as e:
    print(f"main: {e or 'interrupted'}; the complete checkpoints in {_WORKDIR.value} are kept", file=sys.stderr,
          flush=True)
    sys.exit(128 + signal.SIGINT)
  except cli.USER_ERRORS:  # Raised inside the run, not by the command line: a failure of the run (status 1).
    traceback.print_exc()
    sys.exit(1)
  if result.get("preempted"):
    signum = signal.Signals[result["signal"]] if result.get("signal") else signal.SIGTERM
    if result.get("interrupted") == "evaluation":
      sys.exit(128 + signum)
    if signum == signal.SIGINT:
      sys.exit(128 + signum)


if __name__ == "__main__":
  cli.run(main, FLAGS, "main")
