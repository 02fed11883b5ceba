"""What add does with each file: embed it, count it as indexed (by real path), or re-point a moved file's row."""
import os

import numpy as np

from rsvlm_jax.retrieval_index import embed
from rsvlm_jax.retrieval_index import store as store_lib

IDENTITY = {"model": "/models/a", "model_step": 3, "model_config_sha256": "ab"}


def _store(tmp_path, rows):
  s = store_lib.IndexStore.create(str(tmp_path / "INDEX"), identity=IDENTITY, embed_dim=2)
  s.append(rows, np.ones((len(rows), 2)))
  return s


def test_files_are_matched_by_real_path_also_in_rows_of_older_indexes(tmp_path):
  (tmp_path / "real").mkdir()
  (tmp_path / "real" / "a.png").write_bytes(b"a")
  os.symlink(tmp_path / "real", tmp_path / "link")
  old_row = {"path": str(tmp_path / "link" / "a.png"), "size": 1, "mtime": 0.0}  # No sha256: an older index.
  plan = embed.plan(_store(tmp_path, [old_row]), [str(tmp_path / "real" / "a.png"), str(tmp_path / "link/a.png")])
  assert plan.todo == [] and plan.already == 1 and not plan.moved


def test_a_gone_file_with_the_same_bytes_at_a_new_path_is_moved_not_added(tmp_path):
  for name, data in (("a.png", b"aaaa"), ("b.png", b"bbbb"), ("c.png", b"cccc")):
    (tmp_path / name).write_bytes(data)
  rows = [store_lib.file_row(str(tmp_path / n)) for n in ("a.png", "b.png")]
  s = _store(tmp_path, rows)
  os.makedirs(tmp_path / "new")
  os.rename(tmp_path / "a.png", tmp_path / "new" / "a2.png")  # Moved and renamed.
  (tmp_path / "new" / "copy.png").write_bytes(b"bbbb")  # A copy of a file still in place: a file of its own.
  (tmp_path / "new" / "other.png").write_bytes(b"dddd")  # Same size, other bytes.
  paths = [str(tmp_path / "new" / n) for n in ("a2.png", "copy.png", "other.png")] + [str(tmp_path / "c.png")]
  plan = embed.plan(s, paths)
  assert plan.moved == {0: store_lib.file_row(str(tmp_path / "new" / "a2.png"))}
  assert plan.todo == paths[1:] and plan.already == 0
