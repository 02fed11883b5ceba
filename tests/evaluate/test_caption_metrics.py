"""BLEU / ROUGE-L / CIDEr-D / caption_metrics vs pycocoevalcap's scorers (the reference)."""
from __future__ import annotations

import logging
import random
import shutil

import pytest

from rsvlm_jax.evaluate import bleu
from rsvlm_jax.evaluate import caption_metrics
from rsvlm_jax.evaluate import cider
from rsvlm_jax.evaluate import ptb_tokenizer
from rsvlm_jax.evaluate import rouge

TOL = 1e-9

LONG = ("there is a large residential area with many buildings arranged in rows and some green trees "
        "planted along the straight roads while several cars are parked beside the buildings and a river "
        "flows through the area near a bridge")   # 40+ words

RAW_REFS = {
    "img_1": ["Many green trees are around a white building.", "A white building is surrounded by trees.",
              "Some trees and a building.", "There is a building , and many trees are around it ."],
    "img_2": ["A baseball field is next to a road.", "The baseball diamond is beside the road!"],
    "img_3": ["Cars parked.", "Parking lot.", "Many cars are parked in the parking lot, near trees."],
    "img_4": [LONG, LONG.replace("river", "canal"), "a dense residential area"],
    "img_5": ["the the the the", "a red roof", "the roof"],
    "img_6": ["Two tennis courts (blue) are next to a road.", "It's a playground; there's a track."],
    "img_7": ["An airport with planes.", "Several airplanes are parked at the airport."],
}
RAW_PREDS = {
    "img_1": "Many trees are around a building.",
    "img_2": "road",                                        # one word
    "img_3": "cars",                                        # one word
    "img_4": LONG.replace("cars", "trucks"),                # very long
    "img_5": "the the the the the the",                     # repeated words
    "img_6": "Two blue tennis courts, next to a road!",
    "img_7": "zebra stripes everywhere",                    # shares nothing with the references
}


def _tokenized(refs, preds):
  return ({k: [ptb_tokenizer.tokenize(r) for r in v] for k, v in refs.items()},
          {k: ptb_tokenizer.tokenize(v) for k, v in preds.items()})


def _random_set(seed: int, num_images: int = 50):
  rng = random.Random(seed)
  vocab = "a the of building trees green road river many some cars parked near two white large is are".split()

  def cap(lo, hi):
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi)))

  refs = {f"im{i}": [cap(1, 45) for _ in range(rng.randint(1, 6))] for i in range(num_images)}
  preds = {k: cap(1, 30) for k in refs}
  return refs, preds


@pytest.fixture(scope="module")
def coco():
  """pycocoevalcap's scorers (skipped when it is not installed)."""
  pytest.importorskip("pycocoevalcap")
  from pycocoevalcap.bleu.bleu import Bleu  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.cider.cider import Cider  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.rouge.rouge import Rouge  # pylint: disable=g-import-not-at-top
  return Bleu(4), Rouge(), Cider()


def _assert_matches_reference(coco, refs, preds):
  ref_bleu, ref_rouge, ref_cider = coco
  res = {k: [preds[k]] for k in refs}
  ids = list(refs)

  expected, expected_img = ref_bleu.compute_score(refs, res, verbose=0)
  got, got_img = bleu.corpus_bleu(refs, preds)
  assert got == pytest.approx(expected, abs=TOL)
  for n in range(4):
    assert [got_img[k][n] for k in ids] == pytest.approx(expected_img[n], abs=TOL)

  expected, expected_img = ref_rouge.compute_score(refs, res)
  got, got_img = rouge.rouge_l(refs, preds)
  assert got == pytest.approx(expected, abs=TOL)
  assert [got_img[k] for k in ids] == pytest.approx(list(expected_img), abs=TOL)

  expected, expected_img = ref_cider.compute_score(refs, res)
  got, got_img = cider.cider_d(refs, preds)
  assert got == pytest.approx(expected, abs=TOL)
  assert [got_img[k] for k in ids] == pytest.approx(list(expected_img), abs=TOL)


def test_handmade_set_matches_pycocoevalcap(coco):
  _assert_matches_reference(coco, *_tokenized(RAW_REFS, RAW_PREDS))


@pytest.mark.parametrize("seed", [0, 1])
def test_random_set_matches_pycocoevalcap(coco, seed):
  _assert_matches_reference(coco, *_random_set(seed))


def test_edge_cases_match_pycocoevalcap(coco):
  # An empty prediction, an empty reference, a single image with identical caption (log N = 0 in CIDEr).
  _assert_matches_reference(coco, {"a": ["x y z", ""], "b": ["p q"]}, {"a": "", "b": "p q"})
  _assert_matches_reference(coco, {"a": ["a red roof", "a roof"]}, {"a": "a red roof"})


def test_caption_metrics_equals_reference_pipeline(coco):
  refs, preds = _tokenized(RAW_REFS, RAW_PREDS)
  ref_bleu, ref_rouge, ref_cider = coco
  res = {k: [v] for k, v in preds.items()}
  got = caption_metrics.caption_metrics(RAW_REFS, RAW_PREDS)
  assert list(got) == list(caption_metrics.KEYS)
  bleus, _ = ref_bleu.compute_score(refs, res, verbose=0)
  expected = {f"BLEU-{n + 1}": b for n, b in enumerate(bleus)}
  expected["ROUGE-L"] = ref_rouge.compute_score(refs, res)[0]
  expected["CIDEr-D"] = ref_cider.compute_score(refs, res)[0]
  assert got == pytest.approx(expected, abs=TOL)
  assert caption_metrics.caption_metrics(refs, preds, tokenize=False) == pytest.approx(expected, abs=TOL)


def test_caption_metrics_with_java_tokenizer_end_to_end(coco):
  if shutil.which("java") is None:
    pytest.skip("`java` is not on PATH: pycocoevalcap's PTBTokenizer needs Java")
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer  # pylint: disable=g-import-not-at-top
  ref_bleu, ref_rouge, ref_cider = coco
  refs = PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in RAW_REFS.items()})
  res = PTBTokenizer().tokenize({k: [{"caption": v}] for k, v in RAW_PREDS.items()})
  got = caption_metrics.caption_metrics(RAW_REFS, RAW_PREDS)
  assert got["BLEU-4"] == pytest.approx(ref_bleu.compute_score(refs, res, verbose=0)[0][3], abs=TOL)
  assert got["ROUGE-L"] == pytest.approx(ref_rouge.compute_score(refs, res)[0], abs=TOL)
  assert got["CIDEr-D"] == pytest.approx(ref_cider.compute_score(refs, res)[0], abs=TOL)


def test_perfect_and_disjoint_predictions():
  refs = {"a": ["a red roof"], "b": ["two green trees"], "c": ["a long river here"]}
  perfect = caption_metrics.caption_metrics(refs, {k: v[0] for k, v in refs.items()})
  assert perfect["BLEU-1"] == pytest.approx(1.0) and perfect["ROUGE-L"] == pytest.approx(1.0)
  assert perfect["CIDEr-D"] > 1.0
  disjoint = caption_metrics.caption_metrics(refs, {"a": "zzz", "b": "yyy", "c": "xxx"})
  assert disjoint["BLEU-1"] < 1e-6 and disjoint["ROUGE-L"] == 0.0 and disjoint["CIDEr-D"] == 0.0


def test_lcs_length_matches_dynamic_programming():
  def dp(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
      for j, y in enumerate(b):
        table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]
  rng = random.Random(0)
  for _ in range(300):
    a = [rng.choice("abcd") for _ in range(rng.randint(0, 70))]
    b = [rng.choice("abcde") for _ in range(rng.randint(0, 70))]
    assert rouge.lcs_length(a, b) == dp(a, b)


def test_mismatched_ids_are_listed():
  refs = {f"r{i}": ["a cat"] for i in range(8)}
  preds = {f"r{i}": "a cat" for i in range(2)}
  preds["stray"] = "a dog"
  with pytest.raises(ValueError, match="same image ids") as e:
    caption_metrics.caption_metrics(refs, preds)
  message = str(e.value)
  assert "6 image id(s) in refs but not in preds (first 5: ['r2', 'r3', 'r4', 'r5', 'r6'])" in message
  assert "'r7'" not in message
  assert "1 image id(s) in preds but not in refs (first 1: ['stray'])" in message


@pytest.mark.parametrize("refs,preds,error,match", [
    ({"a": []}, {"a": "x"}, ValueError, "image 'a' has no non-empty reference"),
    ({"a": ["", "  "]}, {"a": "x"}, ValueError, "image 'a' has no non-empty reference"),
    ({"a": "a cat"}, {"a": "x"}, TypeError, "references of image 'a' must be a list"),
    ({"a": ["a cat", 3]}, {"a": "x"}, TypeError, "must all be strings"),
    ({"a": ["a cat"]}, {"a": ["x"]}, TypeError, "prediction for image 'a' must be a string"),
    ({}, {}, ValueError, "no images"),
])
def test_invalid_inputs(refs, preds, error, match):
  with pytest.raises(error, match=match):
    caption_metrics.caption_metrics(refs, preds)


def test_meteor_skipped_without_java(monkeypatch, caplog):
  monkeypatch.setattr(caption_metrics.shutil, "which", lambda _: None)
  with caplog.at_level(logging.WARNING):
    out = caption_metrics.caption_metrics({"a": ["a cat"]}, {"a": "a cat"}, meteor=True)
  assert "METEOR" not in out and list(out) == list(caption_metrics.KEYS)
  assert "METEOR skipped: `java` is not on PATH" in caplog.text


def test_meteor_with_java(coco):
  if shutil.which("java") is None:
    pytest.skip("`java` is not on PATH: METEOR needs Java")
  out = caption_metrics.caption_metrics(RAW_REFS, RAW_PREDS, meteor=True)
  assert list(out) == list(caption_metrics.KEYS) + ["METEOR"]
  assert 0.0 < out["METEOR"] < 1.0
