"""Exact chunked top-k equals a brute-force argsort, over uneven blocks and chunks; faiss agrees when installed."""
import numpy as np
import pytest

from rsvlm_jax.retrieval_index import search


def _unit(rng, n, d):
  x = rng.normal(size=(n, d)).astype(np.float32)
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(db, q, k):
  s = q @ db.T
  ids = np.argsort(-s, axis=1, kind="stable")[:, :k]
  return np.take_along_axis(s, ids, 1), ids


@pytest.mark.parametrize("chunk_rows", [7, 16, 1000])
def test_exact_search_matches_brute_force(chunk_rows):
  rng = np.random.default_rng(0)
  db, q = _unit(rng, 50, 8), _unit(rng, 5, 8)
  blocks = [db[:3], db[3:20], db[20:21], db[21:]]  # Shards of uneven sizes, re-chunked to chunk_rows.
  index = search.ExactSearch(blocks, 8, chunk_rows=chunk_rows)
  assert index.count == 50 and len(index.chunks) == -(-50 // chunk_rows)
  scores, ids = index.search(q, 7)
  ref_s, ref_i = _brute(db, q, 7)
  np.testing.assert_array_equal(ids, ref_i)
  np.testing.assert_allclose(scores, ref_s, atol=1e-6)


def test_k_larger_than_the_index_returns_every_row_once():
  rng = np.random.default_rng(1)
  db = _unit(rng, 5, 4)
  scores, ids = search.ExactSearch(db, chunk_rows=3).search(db[:2], 10)
  assert ids.shape == (2, 5) and sorted(ids[0]) == list(range(5))
  assert ids[0, 0] == 0 and ids[1, 0] == 1 and scores[0, 0] == pytest.approx(1.0, abs=1e-6)
  assert np.all(np.diff(scores, axis=1) <= 0)


def test_wrong_query_width_names_the_shapes():
  index = search.ExactSearch(np.eye(4, dtype=np.float32))
  with pytest.raises(ValueError, match=r"Queries must be \[Q, 4\], got \(1, 3\)"):
    index.search(np.ones((1, 3), np.float32), 2)


def test_faiss_agrees_with_exact_search():
  pytest.importorskip("faiss")
  rng = np.random.default_rng(2)
  db, q = _unit(rng, 300, 16), _unit(rng, 10, 16)
  s1, i1 = search.ExactSearch([db[:100], db[100:]], chunk_rows=64).search(q, 10)
  s2, i2 = search.FaissSearch(db).search(q, 10)
  np.testing.assert_array_equal(i1, i2)
  np.testing.assert_allclose(s1, s2, atol=1e-5)


def test_missing_faiss_says_what_to_install(monkeypatch):
  monkeypatch.setitem(__import__("sys").modules, "faiss", None)  # `import faiss` raises ImportError.
  with pytest.raises(ImportError, match=r"pip install faiss-cpu==1\.15\.1"):
    search.FaissSearch(np.eye(2, dtype=np.float32))
