"""SentencePiece tokenizer: training, round trip, padding/EOS, save/load, pickling."""
import pickle

import numpy as np
import pytest

from rsvlm_jax.data import tokenizer as tok_lib

CAPTIONS = ["an aerial view of a harbor with three white ships", "many cars are parked in a parking lot",
            "a dense residential area with red roofs", "two planes near the runway of an airport"] * 20


def test_round_trip_and_padding(tmp_path):
  tok = tok_lib.load_or_train(str(tmp_path / "tok.model"), lambda: iter(CAPTIONS), 120)
  ids = tok.encode("Three white ships  near a harbor", 40)
  assert ids.shape == (40,) and ids.dtype == np.int32
  n = int((ids != 0).sum())
  assert ids[n - 1] == tok_lib.EOS_ID and np.all(ids[n:] == 0)
  assert tok.decode(ids) == "three white ships near a harbor"
  again = tok_lib.load_or_train(str(tmp_path / "tok.model"), lambda: iter(["unused"]), 120)
  assert np.array_equal(again.encode("two planes", 8), tok.encode("two planes", 8))
  clone = pickle.loads(pickle.dumps(tok))
  assert np.array_equal(clone.encode("two planes", 8), tok.encode("two planes", 8))


def test_truncation_keeps_eos():
  tok = tok_lib.train_tokenizer(CAPTIONS, 120)
  ids = tok.encode(" ".join(CAPTIONS[:3]), 6)
  assert ids[-1] == tok_lib.EOS_ID and np.all(ids != 0)


def test_errors(tmp_path):
  with pytest.raises(ValueError, match="no non-empty"):
    tok_lib.train_tokenizer(["", "  "], 50)
  with pytest.raises(FileNotFoundError, match="missing.model"):
    tok_lib.load(str(tmp_path / "missing.model"))
