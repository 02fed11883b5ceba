"""Never lose a run: refusals before the workdir is touched, corrupt checkpoints quarantined, one job per
workdir, start-up config checks, read-only uses writing nothing, and logs without orbax's INFO lines."""
import json
import logging
import os
import shutil
import socket
import subprocess

import pytest

from rsvlm_jax import job as main_lib
from rsvlm_jax.runtime import checkpoint as checkpoint_lib
from rsvlm_jax.runtime import run_lock
from rsvlm_jax.train import trainer as trainer_lib
from tests.fixtures import tiny_config

ARGS = "steps=6,ckpt_every=3"


@pytest.fixture(scope="module")
def base_run(tiny_data_dir, tmp_path_factory):
  """A trained runlocal workdir with checkpoints 3 and 6 (tests work on copies)."""
  workdir = str(tmp_path_factory.mktemp("base") / "run")
  main_lib.run(tiny_config(tiny_data_dir, ARGS), workdir, mode="train")
  return workdir


@pytest.fixture(scope="module")
def abstract_state(tiny_data_dir, base_run):
  return trainer_lib.Trainer(tiny_config(tiny_data_dir, ARGS), base_run, read_only=True).abstract_state


def _copy(src, tmp_path, name="run"):
  dst = str(tmp_path / name)
  shutil.copytree(src, dst)
  return dst


def _listing(root):
  """{path: (size, mtime_ns)} of every file and directory under root."""
  out = {}
  for d, dirs, files in os.walk(root):
    for name in dirs + files:
      st = os.stat(os.path.join(d, name))
      out[os.path.relpath(os.path.join(d, name), root)] = (st.st_size if name in files else 0, st.st_mtime_ns)
  return out


def _holder_process():
  """A live process of this host (another job's pid) and its lock record."""
  proc = subprocess.Popen(["sleep", "60"])
  return proc, {"host": socket.gethostname(), "pid": proc.pid, "proc_start": run_lock.proc_start(proc.pid),
                "started": "2026-01-01 00:00:00"}


def test_changed_model_refuses_before_touching_the_workdir(tiny_data_dir, base_run, tmp_path):
  workdir = _copy(base_run, tmp_path)
  before = _listing(workdir)
  for mode in ("train", "eval"):
    cfg = tiny_config(tiny_data_dir, ARGS, **{"model.embed_dim": 64})
    with pytest.raises(checkpoint_lib.CheckpointMismatchError,
                       match=r"checkpoints/6 does not fit.*params/\S+: checkpoint \(32,\) vs model \(64,\)"):
      main_lib.run(cfg, workdir, mode=mode)
  assert _listing(workdir) == before  # No config.json rewrite, no checkpoint deleted, no lock left.


def test_keep_checkpoints_zero_keeps_every_checkpoint_and_releases_the_lock(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  main_lib.run(tiny_config(tiny_data_dir, "steps=3,ckpt_every=1", keep_checkpoints=0), workdir, mode="train")
  assert checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints")).all_steps() == [1, 2, 3]
  assert not os.path.exists(os.path.join(workdir, run_lock.LOCK_FILE))
  with open(os.path.join(workdir, "dataset.json")) as f:
    assert json.load(f) == {"dataset": "synthetic_scenes/tiny", "splits": {"test": 16, "train": 48, "validation": 16}}


def _truncate_arrays(step_dir):
  d = os.path.join(step_dir, "state", "ocdbt.process_0", "d")
  for f in os.listdir(d):
    os.truncate(os.path.join(d, f), os.path.getsize(os.path.join(d, f)) // 2)


def _write_data(step_dir, text):
  with open(os.path.join(step_dir, "data", "metadata"), "w") as f:
    f.write(text)


CORRUPTIONS = {
    "truncated_arrays": _truncate_arrays,
    "missing_metadata": lambda d: os.remove(os.path.join(d, "state", "_METADATA")),
    "empty_iterator_json": lambda d: _write_data(d, ""),
    "garbage_iterator_state": lambda d: _write_data(d, json.dumps({"iterator": {"next_index": 2.5}, "step": 6})),
    "iterator_state_not_a_dict": lambda d: _write_data(d, json.dumps({"iterator": "x", "step": 6})),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_newest_checkpoint_is_quarantined(base_run, abstract_state, tmp_path, kind):
  workdir = _copy(base_run, tmp_path)
  ckdir = os.path.join(workdir, "checkpoints")
  CORRUPTIONS[kind](os.path.join(ckdir, "6"))
  ckpt = checkpoint_lib.Checkpointer(ckdir, async_save=False)
  step, _, data = ckpt.restore_latest(abstract_state)
  assert step == 3 and data == {"iterator": {"next_index": 3}, "step": 3}
  assert ckpt.all_steps() == [3]
  (moved,) = os.listdir(os.path.join(ckdir, checkpoint_lib.QUARANTINE))
  assert moved.startswith("6-")
  with open(os.path.join(ckdir, checkpoint_lib.QUARANTINE, moved, "QUARANTINE_REASON.txt")) as f:
    assert f.read().strip()


def test_restart_on_a_corrupt_checkpoint_continues_with_few_log_lines(tiny_data_dir, base_run, tmp_path, caplog):
  workdir = _copy(base_run, tmp_path)
  _truncate_arrays(os.path.join(workdir, "checkpoints", "6"))
  caplog.set_level(logging.INFO)
  summary = main_lib.run(tiny_config(tiny_data_dir, ARGS), workdir, mode="train")  # Was StepAlreadyExistsError.
  assert summary["steps"] == 3
  assert checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints")).all_steps() == [3, 6]
  records = caplog.records
  quarantined = [r for r in records if "is corrupt" in r.getMessage()]
  assert len(quarantined) == 1 and "moved to" in quarantined[0].getMessage()
  orbax_info = [r for r in records if os.sep + "orbax" + os.sep in r.pathname and r.levelno < logging.WARNING]
  assert len(orbax_info) <= 2, [r.getMessage()[:100] for r in orbax_info]
  text = "\n".join(r.getMessage() for r in records)
  assert "Traceback" not in text and "Event loop is closed" not in text
  assert sum(m.count("\n") + 1 for m in text.splitlines()) < 60, text[-3000:]


def test_second_job_on_a_workdir_is_refused_and_a_dead_holder_is_stale(tiny_data_dir, base_run, tmp_path):
  workdir = _copy(base_run, tmp_path)
  lock = os.path.join(workdir, run_lock.LOCK_FILE)
  proc, holder = _holder_process()
  try:
    with open(lock, "w") as f:
      json.dump(holder, f)
    before = _listing(workdir)
    with pytest.raises(run_lock.WorkdirLockedError, match=rf"in use by pid {proc.pid} on host {socket.gethostname()}"):
      main_lib.run(tiny_config(tiny_data_dir, ARGS), workdir, mode="train")
    assert _listing(workdir) == before
  finally:
    proc.kill()  # kill -9: the lock file stays behind, stale.
    proc.wait()
  taken = run_lock.WorkdirLock(workdir).acquire()
  with open(lock) as f:
    assert json.load(f)["pid"] == os.getpid()
  taken.release()
  assert not os.path.exists(lock)


def test_workdir_of_another_dataset_is_refused(tiny_data_dir, base_run, tmp_path):
  workdir = _copy(base_run, tmp_path)
  path = os.path.join(workdir, "dataset.json")
  with open(path, "w") as f:  # As if this workdir (tokenizer, DRIS caches) had been made on another dataset.
    json.dump({"dataset": "synthetic_scenes/demo", "splits": {"test": 300, "train": 2400, "validation": 200}}, f)
  for mode in ("train", "eval"):
    with pytest.raises(ValueError, match=rf"{path}: .*'synthetic_scenes/demo'.*config key input.dataset gives "
                                         r"'synthetic_scenes/tiny'"):
      main_lib.run(tiny_config(tiny_data_dir, ARGS), workdir, mode=mode)


@pytest.mark.parametrize("key", ["input.batch_size", "evals.captioning.batch_size"])
def test_batch_size_not_divisible_by_devices_fails_at_start(tiny_data_dir, tmp_path, key):
  workdir = str(tmp_path / "run")
  with pytest.raises(ValueError, match=rf"Config key {key}=12 is not divisible by the 8 devices"):
    main_lib.run(tiny_config(tiny_data_dir, ARGS, **{key: 12}), workdir)  # The config gate checks it.
  assert not os.path.exists(workdir)


@pytest.mark.parametrize("key,value", [("total_steps", -5), ("total_steps", 0), ("ckpt_every", 0),
                                       ("keep_checkpoints", -1), ("log_every", 0)])
def test_bad_durations_fail_at_start(tiny_data_dir, tmp_path, key, value):
  workdir = str(tmp_path / "run")
  with pytest.raises(ValueError, match=rf"Config key {key} must be .*got {value}"):
    main_lib.run(tiny_config(tiny_data_dir, ARGS, **{key: value}), workdir)
  assert not os.path.exists(workdir)


@pytest.mark.parametrize("arg", ["steps=-5", "steps=0", "ckpt_every=-2"])
def test_demo_config_rejects_non_positive_durations(arg):
  from configs import demo  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=rf"Config arg '{arg.split('=')[0]}' must be a positive"):
    demo.get_config(f"runlocal=True,{arg}")
  assert demo.get_config("runlocal=True,steps=-1").total_steps == 6


def test_read_only_uses_write_nothing(tiny_data_dir, base_run, tmp_path):
  from rsvlm_jax.tools import fit_dris_scorer  # pylint: disable=g-import-not-at-top
  workdir = _copy(base_run, tmp_path)
  subprocess.run(["chmod", "-R", "a-w", workdir], check=True)
  try:
    before = _listing(workdir)
    metrics = main_lib.run(tiny_config(tiny_data_dir, ARGS), workdir, mode="eval")
    assert metrics["step"] == 6 and "retrieval" in metrics
    out = str(tmp_path / "scorer" / "s.npz")
    os.makedirs(os.path.dirname(out))
    fit_dris_scorer.fit_from_run(tiny_config(tiny_data_dir, ARGS), workdir, out, max_images=8, fit_steps=5)
    assert os.path.exists(out)
    assert _listing(workdir) == before
  finally:
    subprocess.run(["chmod", "-R", "u+w", workdir], check=True)


def test_library_logs_hides_and_shows_orbax_info(caplog):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  absl_logger = logging.getLogger("absl")
  record = lambda level: absl_logger.makeRecord("absl", level, ocp.__file__, 1, "orbax says %s", ("hi",), None)
  caplog.set_level(logging.INFO)
  try:
    for show in (False, True):
      caplog.clear()
      main_lib.quiet_library_logs(not show)
      absl_logger.handle(record(logging.INFO))
      absl_logger.handle(record(logging.WARNING))
      assert [r.levelno for r in caplog.records] == ([logging.INFO] if show else []) + [logging.WARNING]
  finally:
    main_lib.quiet_library_logs(True)


def test_unbuilt_dataset_is_refused_before_the_workdir_is_touched(tmp_path):
  from rsvlm_jax import config_schema  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / "tfds")
  os.makedirs(data_dir)
  workdir = str(tmp_path / "run")
  with pytest.raises(config_schema.ConfigError, match=rf"python -m rsvlm_jax.build_dataset synthetic_scenes/tiny "
                                                      rf"--data_dir={data_dir}"):
    main_lib.run(tiny_config(data_dir, ARGS), workdir)
  assert not os.path.exists(workdir)


def _no_space_on(step_to_fail):
  """CheckpointManager.save that writes part of `step_to_fail`'s temporary directory, then hits a full disk."""
  import errno  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  original = ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step == step_to_fail:
      partial = os.path.join(str(self.directory), f"{step}.orbax-checkpoint-tmp")
      os.makedirs(os.path.join(partial, "state"), exist_ok=True)
      with open(os.path.join(partial, "state", "part"), "wb") as f:
        f.write(b"\0" * 100)
      raise OSError(errno.ENOSPC, "No space left on device")
    return original(self, step, *args, **kwargs)
  return save


def test_full_disk_during_a_checkpoint_says_so_and_keeps_the_older_ones(tiny_data_dir, base_run, abstract_state,
                                                                          tmp_path, monkeypatch):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  workdir = _copy(base_run, tmp_path)
  ckdir = os.path.join(workdir, "checkpoints")
  shutil.rmtree(os.path.join(ckdir, "6"))  # Resume from 3; the save of 6 finds the disk full.
  monkeypatch.setattr(ocp.CheckpointManager, "save", _no_space_on(6))
  with pytest.raises(checkpoint_lib.CheckpointWriteError) as e:
    main_lib.run(tiny_config(tiny_data_dir, ARGS), workdir)
  assert str(e.value) == (f"Checkpoint of step 6 could not be written to {ckdir}: no space left on device (the "
                          "newest complete checkpoint is step 3)")
  assert sorted(os.listdir(ckdir)) == ["3"]  # The partial step is gone, the older one untouched.
  assert not os.path.exists(os.path.join(workdir, "metrics.json"))
  assert not os.path.exists(os.path.join(workdir, run_lock.LOCK_FILE))
  step, _, _ = checkpoint_lib.Checkpointer(ckdir).restore_latest(abstract_state)
  assert step == 3
  monkeypatch.undo()  # Space again: the same command resumes from 3.
  assert main_lib.run(tiny_config(tiny_data_dir, ARGS), workdir, mode="train")["steps"] == 3


def test_full_disk_before_the_first_checkpoint(tmp_path, monkeypatch):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(ocp.CheckpointManager, "save", _no_space_on(1))
  ckpt = checkpoint_lib.Checkpointer(str(tmp_path / "checkpoints"), async_save=False)
  with pytest.raises(checkpoint_lib.CheckpointWriteError, match=r"step 1 could not be written to .*: no space left "
                                                                r"on device \(no checkpoint was written yet\)$"):
    ckpt.save(1, {"a": np.zeros(3)}, {"iterator": {"next_index": 1}, "step": 1})
  assert os.listdir(tmp_path / "checkpoints") == []


_ENOSPC_SCRIPT = """
import os, sys
import numpy as np
from rsvlm_jax.runtime import checkpoint as C
d = sys.argv[1] + "/checkpoints"
ck = C.Checkpointer(d, async_save=sys.argv[2] == "async")
ck.save(1, {"a": np.ones(100, np.float32)}, {"iterator": {"next_index": 1}, "step": 1}); ck.wait()
with open(sys.argv[1] + "/fill", "wb") as f:  # The rest of the file system.
  try:
    f.write(b"x" * 10 ** 7)
  except OSError:
    pass
try:
  ck.save(2, {"a": np.ones(100000, np.float32)}, {"iterator": {"next_index": 2}, "step": 2}); ck.wait()
except C.CheckpointWriteError as e:
  print("ERROR", e)
print("LEFT", sorted(os.listdir(d)))
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_real_full_disk_on_a_small_tmpfs(tmp_path, mode):
  """A real ENOSPC: a 400 KiB tmpfs in a user namespace (skipped where unprivileged namespaces are off)."""
  import sys  # pylint: disable=g-import-not-at-top
  mnt = tmp_path / "mnt"
  mnt.mkdir()
  probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=400k tmpfs {mnt}"],
                         capture_output=True)
  if probe.returncode:
    pytest.skip("no unprivileged mount namespace for a small tmpfs")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, PYTHONPATH=root, JAX_PLATFORMS="cpu")
  proc = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=400k tmpfs {mnt} && "
                         f"{sys.executable} -c '{_ENOSPC_SCRIPT}' {mnt} {mode}"], capture_output=True, text=True,
                        env=env, timeout=300)
  assert (f"ERROR Checkpoint of step 2 could not be written to {mnt}/checkpoints: no space left on device (the "
          "newest complete checkpoint is step 1)") in proc.stdout, proc.stdout + proc.stderr[-3000:]
  assert "LEFT ['1']" in proc.stdout
