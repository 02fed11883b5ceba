"""One writer per index: a second is refused naming the holder; a dead holder's lock is taken over."""
import json
import os
import subprocess
import sys

import pytest

from rsvlm_jax.retrieval_index import lock as lock_lib


def test_a_second_writer_is_refused_naming_the_index_and_the_holder(tmp_path):
  with lock_lib.IndexLock(str(tmp_path)):
    with pytest.raises(lock_lib.IndexLockedError, match=rf"{tmp_path} is being written by pid {os.getpid()} on "
                       r"host .*two writers at once would corrupt it"):
      lock_lib.IndexLock(str(tmp_path)).acquire()  # Another writer, even a thread of this process.
    assert os.path.isfile(tmp_path / lock_lib.LOCK_FILE)
  assert not os.path.exists(tmp_path / lock_lib.LOCK_FILE)  # Released.
  with lock_lib.IndexLock(str(tmp_path)):  # Free again.
    pass


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
  gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                        check=True)
  dead = {"host": __import__("socket").gethostname(), "pid": int(gone.stdout), "started": "earlier"}
  (tmp_path / lock_lib.LOCK_FILE).write_text(json.dumps(dead))
  with lock_lib.IndexLock(str(tmp_path)) as held:
    assert json.loads((tmp_path / lock_lib.LOCK_FILE).read_text())["token"] == held.token
  assert "Taking over the stale lock" in capsys.readouterr().err


def test_release_leaves_a_lock_it_does_not_hold(tmp_path):
  mine = lock_lib.IndexLock(str(tmp_path)).acquire()
  os.remove(tmp_path / lock_lib.LOCK_FILE)
  other = lock_lib.IndexLock(str(tmp_path)).acquire()
  mine.release()
  assert json.loads((tmp_path / lock_lib.LOCK_FILE).read_text())["token"] == other.token
  other.release()


def test_the_store_knows_the_lock_file_name():
  from rsvlm_jax.retrieval_index import store as store_lib  # pylint: disable=g-import-not-at-top
  assert store_lib.LOCK_FILE == lock_lib.LOCK_FILE
