"""The INDEX directory: shards append, an interrupted commit is ignored and repaired, other models are refused."""
import json
import os

import numpy as np
import pytest

from rsvlm_jax.retrieval_index import store as store_lib

IDENTITY = {"model": "/models/a", "model_step": 3, "model_config_sha256": "ab"}


def _rows(names):
  return [{"path": f"/img/{n}", "size": 1, "mtime": 2.0} for n in names]


def test_append_shards_and_reopen(tmp_path):
  s = store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=3)
  s.append(_rows("ab"), np.ones((2, 3)))
  s.append(_rows("c"), np.zeros((1, 3)))
  again = store_lib.IndexStore.open(str(tmp_path / "i"))
  assert again.count == 3 and again.paths() == ["/img/a", "/img/b", "/img/c"]
  assert [sh["rows"] for sh in again.meta["shards"]] == [2, 1]
  np.testing.assert_array_equal(again.embeddings(), [[1] * 3, [1] * 3, [0] * 3])
  assert again.embeddings().dtype == np.float32


def test_interrupted_commit_is_ignored_then_repaired(tmp_path):
  s = store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2)
  s.append(_rows("a"), np.ones((1, 2)))
  with open(tmp_path / "i" / store_lib.MANIFEST, "a") as f:  # A commit that died before index.json.
    f.write(json.dumps(_rows("x")[0]) + "\n")
  s = store_lib.IndexStore.open(str(tmp_path / "i"))
  assert s.paths() == ["/img/a"]
  s.append(_rows("b"), np.zeros((1, 2)))
  with open(tmp_path / "i" / store_lib.MANIFEST) as f:
    assert [json.loads(line)["path"] for line in f] == ["/img/a", "/img/b"]


def test_create_refuses_a_non_empty_directory(tmp_path):
  (tmp_path / "i").mkdir()
  (tmp_path / "i" / "notes.txt").write_text("x")
  with pytest.raises(FileExistsError, match="--out .* exists and is not empty"):
    store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2)
  with pytest.raises(FileExistsError, match="is not an index"):
    store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2, overwrite=True)
  assert os.path.isfile(tmp_path / "i" / "notes.txt")


def test_another_model_or_a_retrained_one_is_refused(tmp_path):
  s = store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2)
  s.check_model(dict(IDENTITY))
  with pytest.raises(ValueError, match="built with the model in /models/a, not /models/b"):
    s.check_model({**IDENTITY, "model": "/models/b"})
  with pytest.raises(ValueError, match=r"has changed since .* \(model_step: 3 -> 9\)"):
    s.check_model({**IDENTITY, "model_step": 9})


def test_open_names_a_missing_index(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"--index .* is not an index: no index.json"):
    store_lib.IndexStore.open(str(tmp_path))


def test_rewrite_drops_rows_keeping_each_row_with_its_embedding(tmp_path):
  s = store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2)
  s.append(_rows("ab"), [[0, 0], [1, 1]])
  s.append(_rows("cd"), [[2, 2], [3, 3]])
  s.append(_rows("e"), [[4, 4]])
  moved = {**_rows("d")[0], "path": "/new/d"}
  s.rewrite([1, 2, 3, 4], [s.rows[1], s.rows[2], moved, s.rows[4]])
  again = store_lib.IndexStore.open(str(tmp_path / "i"))
  assert again.paths() == ["/img/b", "/img/c", "/new/d", "/img/e"]
  np.testing.assert_array_equal(again.embeddings(), [[1, 1], [2, 2], [3, 3], [4, 4]])
  s.append(_rows("f"), [[5, 5]])  # New shard names never reuse a listed one.
  again = store_lib.IndexStore.open(str(tmp_path / "i"))
  assert again.paths()[-1] == "/img/f" and again.embeddings()[-1].tolist() == [5, 5]
  listed = {sh["file"] for sh in again.meta["shards"]} | {again.meta["manifest"], "index.json"}
  assert set(os.listdir(tmp_path / "i")) == listed  # The replaced shards and manifest are deleted.


def test_a_rewrite_interrupted_before_index_json_leaves_the_old_index(tmp_path, monkeypatch):
  s = store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2)
  s.append(_rows("abc"), [[0, 0], [1, 1], [2, 2]])

  def die():
    raise KeyboardInterrupt

  monkeypatch.setattr(s, "_write_meta", die)
  with pytest.raises(KeyboardInterrupt):
    s.rewrite([0, 2])
  again = store_lib.IndexStore.open(str(tmp_path / "i"))
  assert again.paths() == ["/img/a", "/img/b", "/img/c"]
  np.testing.assert_array_equal(again.embeddings(), [[0, 0], [1, 1], [2, 2]])


def test_overwrite_keeps_the_writers_lock_file(tmp_path):
  s = store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2)
  s.append(_rows("a"), [[1, 1]])
  (tmp_path / "i" / store_lib.LOCK_FILE).write_text("{}")
  s = store_lib.IndexStore.create(str(tmp_path / "i"), identity=IDENTITY, embed_dim=2, overwrite=True)
  assert s.count == 0 and os.path.isfile(tmp_path / "i" / store_lib.LOCK_FILE)
  assert store_lib.check_new(str(tmp_path / "j"), False) == str(tmp_path / "j")
