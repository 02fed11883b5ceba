"""launch/local.sh: a failing process makes the launcher fail, naming the process and showing its log."""
import os
import re
import stat
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL_SH = os.path.join(ROOT, "launch", "local.sh")


def _run(num, config, workdir, python, timeout=120):
  env = dict(os.environ, PYTHON=python, RSVLM_PORT="23456", LOG_TAIL="5")
  return subprocess.run(["bash", LOCAL_SH, str(num), config, str(workdir)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_a_bad_config_fails_the_launch_naming_the_process_and_its_log(tmp_path):
  # A config error is bad input: `main` exits 2 (one line, no traceback), and the launcher passes that on.
  proc = _run(2, "configs/demo.py:bogus=1", tmp_path / "wd", sys.executable)
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert re.search(r"process [01] \(pid \d+\) failed with exit code 2; last lines of .*process_[01]\.log",
                   proc.stderr), proc.stderr
  assert "Unknown config arg 'bogus'" in proc.stderr  # The log's tail, shown.
  assert "finished with exit code 2" in proc.stdout


def test_the_first_failure_is_reported_and_stops_the_others(tmp_path):
  """Process 1 fails while process 0 would wait for it forever: the launcher reports 1 and stops 0."""
  fake = tmp_path / "fake_python"
  fake.write_text('#!/usr/bin/env bash\n'
                  'if [[ $RSVLM_PROCESS_ID == 1 ]]; then echo "boom in process 1"; exit 3; fi\n'
                  'exec sleep 60\n')
  fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
  proc = _run(2, "configs/demo.py", tmp_path / "wd", str(fake), timeout=30)
  assert proc.returncode == 3, proc.stdout + proc.stderr
  assert re.search(r"process 1 \(pid \d+\) failed with exit code 3", proc.stderr), proc.stderr
  assert "  | boom in process 1" in proc.stderr
  assert re.search(r"process 0 \(pid \d+\) exited with code 143", proc.stderr)  # Stopped, not waited for.
