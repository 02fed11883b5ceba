"""Bad flags of tools/dris_preview and tools/memory_table: one line naming the flag, no traceback, exit status 2.

Exit status 2 (absl's own flag errors exit 1): every command reports bad input the same way (runtime/cli.py), as
issue 33 asks and as argparse and the other tools' own checks always did.
"""
import os
import subprocess
import sys

from tests.fixtures import unwritable_dir
from tests.fixtures import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_all(commands):
  """Runs the commands at once; returns [(exit code, stderr)]."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
  procs = [subprocess.Popen([sys.executable, "-m", *c], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for c in commands]
  stderrs = [p.communicate(timeout=120)[1] for p in procs]
  return [(p.returncode, stderr) for p, stderr in zip(procs, stderrs)]


def test_dris_preview_flag_errors(tmp_path):
  base = ["rsvlm_jax.tools.dris_preview", "--config=configs/demo.py:runlocal=True",
          f"--workdir={tmp_path / 'run'}"]
  cases = [(["--num=0"], "flag --num=0: 0 is not a positive integer"),
           (["--num=-3"], "flag --num=-3: -3 is not a positive integer"),
           ([f"--out={tmp_path / 'missing' / 'p.png'}"],
            f"dris_preview: error: --out={tmp_path / 'missing' / 'p.png'}: folder {tmp_path / 'missing'} does not "
            "exist")]
  unwritable = unwritable_dir(tmp_path)
  if unwritable:
    cases.append(([f"--out={unwritable}/p.png"], f"dris_preview: error: --out={unwritable}/p.png: cannot write in "
                  f"{unwritable}"))
  for (args, message), (code, stderr) in zip(cases, _run_all([base + a for a, _ in cases])):
    assert code == 2 and "Traceback" not in stderr, stderr
    assert message in stderr, stderr
  assert not os.path.exists(tmp_path / "run")  # Failed before touching the run.


def test_memory_table_flag_errors():
  cases = [("--devices=0", "flag --devices=0: 0 is not a positive integer"),
           ("--act_batch=0", "flag --act_batch=0: 0 is not a positive integer"),
           ("--resolutions=abc", "flag --resolutions=['abc']: --resolutions must be positive integers")]
  for (_, message), (code, stderr) in zip(cases, _run_all([["rsvlm_jax.tools.memory_table", a] for a, _ in cases])):
    assert code == 2 and "Traceback" not in stderr, stderr
    assert message in stderr, stderr
