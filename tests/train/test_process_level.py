"""Process-level behaviour: kill -9 then resume reproduces the curve bit for bit; SIGTERM saves and
exits 0, Ctrl-C saves and exits 130, SIGTERM in the final evaluation stops it (143); two local processes (one JAX cluster over gloo) match one process on the same global batch."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.fixtures import FAST_COMPILE_XLA_FLAGS
from tests.fixtures import read_jsonl
from tests.fixtures import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cmd(data_dir, workdir, args, mode="train"):
  return [sys.executable, "-m", "rsvlm_jax.main",
          f"--config=configs/demo.py:runlocal=True,data_dir={data_dir},{args}",
          f"--workdir={workdir}", f"--mode={mode}", "--config.async_checkpoint=False"]


def _env(devices=1):
  env = dict(os.environ)
  env["XLA_FLAGS"] = xla_flags(devices)
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _losses(workdir):
  """step -> loss, the last logged value per step (a killed run may have logged a step twice)."""
  return {r["step"]: r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "loss" in r}


def _wait_for(pred, proc, timeout=240):
  t0 = time.time()
  while time.time() - t0 < timeout:
    if pred():
      return True
    if proc.poll() is not None:
      return False
    time.sleep(0.2)
  return False


def _ckpt_steps(workdir):
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(x) for x in os.listdir(d) if x.isdigit()) if os.path.isdir(d) else []


def test_kill9_then_resume_is_bit_exact(tiny_data_dir, tmp_path):
  args = "steps=12,ckpt_every=4"
  full = str(tmp_path / "full")
  subprocess.run(_cmd(tiny_data_dir, full, args), env=_env(), cwd=ROOT, check=True, capture_output=True)
  killed = str(tmp_path / "killed")
  proc = subprocess.Popen(_cmd(tiny_data_dir, killed, args),
                          env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  jsonl = os.path.join(killed, "metrics.jsonl")
  ok = _wait_for(lambda: 4 in _ckpt_steps(killed) and os.path.exists(jsonl) and len(_losses(killed)) >= 6, proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert ok, "the run never reached step 6"
  assert max(_losses(killed)) < 12
  subprocess.run(_cmd(tiny_data_dir, killed, args), env=_env(), cwd=ROOT, check=True, capture_output=True)
  full_losses, resumed = _losses(full), _losses(killed)
  assert sorted(resumed) == list(range(1, 13))
  for step in range(1, 13):
    assert resumed[step] == full_losses[step], step  # Bit for bit.


def _signal_a_long_run(data_dir: str, workdir: str, sig: int) -> tuple[bool, int, str]:
  """Starts a long run, sends `sig` once 3 steps are logged; returns (steps were logged, exit status, output)."""
  proc = subprocess.Popen(_cmd(data_dir, workdir, "steps=100000,ckpt_every=100000"), env=_env(), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  ok = _wait_for(lambda: os.path.exists(os.path.join(workdir, "metrics.jsonl")) and len(_losses(workdir)) >= 3, proc)
  proc.send_signal(sig)
  out, _ = proc.communicate(timeout=120)
  return ok, proc.returncode, out


def test_sigterm_saves_and_exits_zero(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / "term")
  ok, code, out = _signal_a_long_run(tiny_data_dir, workdir, signal.SIGTERM)
  assert ok
  assert code == 0, out[-3000:]
  assert "SIGTERM received: saved checkpoint at step" in out
  steps = _ckpt_steps(workdir)
  assert steps and steps[-1] >= 3


def test_first_sigint_saves_like_sigterm_and_exits_130(tiny_data_dir, tmp_path):
  """Ctrl-C no longer loses the steps since the last checkpoint behind a KeyboardInterrupt traceback."""
  workdir = str(tmp_path / "int")
  ok, code, out = _signal_a_long_run(tiny_data_dir, workdir, signal.SIGINT)
  assert ok
  assert code == 130, out[-3000:]
  assert "SIGINT received: saved checkpoint at step" in out
  assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
  steps = _ckpt_steps(workdir)
  assert steps and steps[-1] >= 3 and steps[-1] >= max(_losses(workdir))  # Every logged step is saved.


def test_sigterm_during_the_final_evaluation_stops_it(tiny_data_dir, tmp_path):
  """The evaluation stops at once (no SLURM grace period overrun): the checkpoint is saved, no metrics.json is
  written from part of the evals, and the status is 143 (128 + SIGTERM)."""
  workdir = str(tmp_path / "evalterm")
  proc = subprocess.Popen(_cmd(tiny_data_dir, workdir, "steps=2,ckpt_every=2", mode="train_and_eval"), env=_env(),
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  out = []
  for line in proc.stdout:  # Training has ended (checkpoint 2 saved) when the trainer logs its summary.
    out.append(line)
    if "Trained 2 steps" in line:
      proc.send_signal(signal.SIGTERM)
      break
  rest, _ = proc.communicate(timeout=120)
  out = "".join(out) + rest
  assert proc.returncode == 143, out[-3000:]
  assert "SIGTERM received during the evaluation of step 2: evaluation stopped, metrics.json not written" in out
  assert "Traceback" not in out, out[-3000:]
  assert not os.path.exists(os.path.join(workdir, "metrics.json"))
  assert _ckpt_steps(workdir) == [2]


@pytest.mark.skipif(sys.platform != "linux", reason="gloo CPU collectives")
def test_two_processes_match_one(tiny_data_dir, tmp_path):
  args = "steps=5,ckpt_every=5"
  one = str(tmp_path / "one")
  subprocess.run(_cmd(tiny_data_dir, one, args), env=_env(devices=2), cwd=ROOT, check=True, capture_output=True)
  two = str(tmp_path / "two")
  env = _env()
  env["PYTHON"] = sys.executable
  env["XLA_EXTRA_FLAGS"] = FAST_COMPILE_XLA_FLAGS
  res = subprocess.run(["bash", os.path.join(ROOT, "launch", "local.sh"), "2",
                        f"configs/demo.py:runlocal=True,data_dir={tiny_data_dir},{args}", two, "--mode=train",
                        "--config.async_checkpoint=False"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  logs = "".join(open(os.path.join(two, "logs", f)).read()[-2000:] for f in sorted(os.listdir(os.path.join(two, "logs"))))
  assert res.returncode == 0, res.stdout + logs
  np.testing.assert_allclose([_losses(two)[s] for s in range(1, 6)], [_losses(one)[s] for s in range(1, 6)],
                             rtol=1e-5, atol=1e-5)
  with open(os.path.join(two, "run_info.json")) as f:
    assert json.load(f)["devices"]["processes"] == 2
