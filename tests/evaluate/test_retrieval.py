"""retrieval_metrics: known answers, ties, several captions per image, chunking."""
from __future__ import annotations

import numpy as np
import pytest

from rsvlm_jax.evaluate import retrieval

KEYS = ["i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "mR"]


def _brute_force_ranks(sim, owner, ties):
  """Ranks by explicit sorting: gt items placed after (pessimistic) or before (optimistic) tied others."""
  num_images, num_texts = sim.shape
  i2t = []
  for i in range(num_images):
    gt = owner == i
    # Sort by score descending; among equal scores, gt texts go last (pessimistic) or first (optimistic).
    order = np.lexsort((gt if ties == "pessimistic" else ~gt, -sim[i]))
    i2t.append(int(np.flatnonzero(gt[order])[0]))
  t2i = []
  for j in range(num_texts):
    gt = np.arange(num_images) == owner[j]
    order = np.lexsort((gt if ties == "pessimistic" else ~gt, -sim[:, j]))
    t2i.append(int(np.flatnonzero(gt[order])[0]))
  return np.array(i2t), np.array(t2i)


def test_identity_is_perfect():
  out = retrieval.retrieval_metrics(np.eye(20), np.arange(20))
  assert list(out) == KEYS
  assert all(v == 100.0 for v in out.values())


def test_hand_built_ranks():
  # 3 images x 6 texts, texts 2i and 2i+1 describe image i.
  owner = np.array([0, 0, 1, 1, 2, 2])
  sim = np.array([
      [0.9, 0.1, 0.5, 0.2, 0.3, 0.4],   # image 0: its text 0 is first           -> i2t rank 0
      [0.8, 0.7, 0.1, 0.6, 0.2, 0.3],   # image 1: best own text (0.6) is third  -> i2t rank 2
      [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],   # image 2: own texts are top two         -> i2t rank 0
  ])
  # t2i (columns): text 0 -> image 0 first (0); text 1 -> image 0 has 0.1 < 0.7, 0.2 -> rank 2;
  # text 2 -> image 1 has 0.1 < 0.5, 0.3 -> rank 2; text 3 -> 0.6 is top -> 0; texts 4, 5 -> 0.
  i2t, t2i = retrieval.ranks(sim, owner)
  np.testing.assert_array_equal(i2t, [0, 2, 0])
  np.testing.assert_array_equal(t2i, [0, 2, 2, 0, 0, 0])
  out = retrieval.retrieval_metrics(sim, owner, ks=(1, 2, 3))
  assert out == pytest.approx({
      "i2t_R@1": 200 / 3, "i2t_R@2": 200 / 3, "i2t_R@3": 100.0,
      "t2i_R@1": 400 / 6, "t2i_R@2": 400 / 6, "t2i_R@3": 100.0,
      "mR": (200 / 3 * 2 + 100 + 400 / 6 * 2 + 100) / 6})


def test_any_caption_counts_for_image_to_text():
  owner = np.array([0, 0, 0, 1])
  sim = np.array([[0.0, 0.1, 0.9, 0.5],    # only image 0's third caption beats the negative
                  [0.0, 0.0, 0.0, 0.2]])
  i2t, _ = retrieval.ranks(sim, owner)
  np.testing.assert_array_equal(i2t, [0, 0])


def test_ties_pessimistic_and_optimistic():
  owner = np.array([0, 0, 1, 1, 2, 2])
  sim = np.ones((3, 6))   # everything tied
  i2t, t2i = retrieval.ranks(sim, owner, ties="pessimistic")
  np.testing.assert_array_equal(i2t, [4, 4, 4])        # after the 4 tied negatives (own tie not counted)
  np.testing.assert_array_equal(t2i, [2] * 6)          # after the 2 other images
  i2t, t2i = retrieval.ranks(sim, owner, ties="optimistic")
  np.testing.assert_array_equal(i2t, [0, 0, 0])
  np.testing.assert_array_equal(t2i, [0] * 6)
  assert retrieval.retrieval_metrics(sim, owner)["i2t_R@1"] == 0.0
  assert retrieval.retrieval_metrics(sim, owner)["i2t_R@5"] == 100.0
  assert retrieval.retrieval_metrics(sim, owner, ties="optimistic")["mR"] == 100.0


def test_partial_ties():
  owner = np.array([0, 1, 2])
  sim = np.array([[0.5, 0.9, 0.5],     # image 0: one negative above, one tied
                  [0.0, 0.3, 0.0],
                  [0.5, 0.1, 0.2]])    # text 0: image 2 tied with the gt image 0
  i2t, t2i = retrieval.ranks(sim, owner)
  np.testing.assert_array_equal(i2t, [2, 0, 1])
  np.testing.assert_array_equal(t2i, [1, 1, 1])
  i2t, t2i = retrieval.ranks(sim, owner, ties="optimistic")
  np.testing.assert_array_equal(i2t, [1, 0, 1])
  np.testing.assert_array_equal(t2i, [0, 1, 1])


@pytest.mark.parametrize("ties", retrieval.TIES)
def test_chunked_equals_unchunked_and_brute_force(ties):
  rng = np.random.default_rng(0)
  num_images, num_texts = 300, 1500
  owner = np.concatenate([np.arange(num_images), rng.integers(0, num_images, num_texts - num_images)])
  sim = np.round(rng.standard_normal((num_images, num_texts)), 1).astype(np.float32)   # many ties
  sim[owner, np.arange(num_texts)] += 1.0
  whole = retrieval.ranks(sim, owner, ties=ties, chunk_size=None)
  for chunk_size in (1, 7, 64, 1000):
    chunked = retrieval.ranks(sim, owner, ties=ties, chunk_size=chunk_size)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])
  brute = _brute_force_ranks(sim, owner, ties)
  np.testing.assert_array_equal(whole[0], brute[0])
  np.testing.assert_array_equal(whole[1], brute[1])
  assert (retrieval.retrieval_metrics(sim, owner, ties=ties, chunk_size=7)
          == retrieval.retrieval_metrics(sim, owner, ties=ties, chunk_size=None))


def test_nan_only_fails_on_ground_truth():
  sim = np.eye(3)
  sim[0, 1] = np.nan   # a negative: never outranks
  assert retrieval.retrieval_metrics(sim, np.arange(3))["mR"] == 100.0
  sim[1, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    retrieval.retrieval_metrics(sim, np.arange(3))


@pytest.mark.parametrize("sim,owner,kwargs,match", [
    (np.eye(3), np.array([0, 1, 1]), {}, "image 2 has no text"),
    (np.eye(3), np.array([0, 1]), {}, "text_to_image must be 3"),
    (np.eye(3), np.array([0, 1, 3]), {}, r"values must be in \[0, 3\)"),
    (np.ones(3), np.array([0, 1, 2]), {}, "must be \\[num_images, num_texts\\]"),
    (np.eye(3), np.arange(3), {"ties": "random"}, "ties must be one of"),
    (np.eye(3), np.arange(3), {"ks": (0,)}, "ks must be positive"),
    (np.eye(3), np.arange(3), {"chunk_size": 0}, "chunk_size must be positive"),
])
def test_invalid_inputs(sim, owner, kwargs, match):
  with pytest.raises(ValueError, match=match):
    retrieval.retrieval_metrics(sim, owner, **kwargs)


def test_recalls_on_a_subset_of_queries_match_brute_force():
  rng = np.random.default_rng(3)
  owner = np.repeat(np.arange(12), 3)
  sim = rng.normal(size=(12, 36))
  group = np.arange(12) % 2  # Two groups of images; the gallery stays whole.
  i2t, t2i = retrieval.ranks(sim, owner)
  bf_i2t, bf_t2i = _brute_force_ranks(sim, owner, "pessimistic")
  for g in (0, 1):
    out = retrieval.recalls(i2t[group == g], t2i[group[owner] == g], ks=(1, 5))
    assert out["i2t_R@1"] == 100.0 * np.mean(bf_i2t[group == g] < 1)
    assert out["t2i_R@5"] == 100.0 * np.mean(bf_t2i[group[owner] == g] < 5)
  assert retrieval.recalls(i2t, t2i) == retrieval.retrieval_metrics(sim, owner)
