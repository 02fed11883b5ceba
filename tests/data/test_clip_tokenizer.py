"""The CLIP BPE tokenizer (no torch) gives open_clip's ids; open_clip is the reference."""
from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest

from rsvlm_jax.data import clip_tokenizer
from rsvlm_jax.data import tokenizer as tokenizer_lib

open_clip = pytest.importorskip("open_clip")

CLASSES = ["airport", "bare land", "baseball field", "beach", "bridge", "center", "church", "commercial area",
           "dense residential", "desert", "farmland", "forest", "industrial area", "meadow", "medium residential",
           "mountain", "park", "parking lot", "playground", "pond", "port", "railway station", "resort", "river",
           "school", "sparse residential", "square", "stadium", "storage tanks", "viaduct"]
TEMPLATES = ["a satellite photo of {}.", "An aerial image of a {} with {} cars", "there are {} ships near the {}!",
             "{}: many  buildings\tand\ngreen trees", "the {} is surrounded by roads (about {} m wide)",
             "It's a {} — we'll see {} planes", "{} &amp; {} &lt;3", "GRAY {} in the upper-left; {}%"]
ODD = ["", " ", "\n\t", "!!!", "<start_of_text>", "a <end_of_text> b", "don't I'd you're they've it'll",
       "Ünïcödé straße café naïve", "東京の港に船がたくさん", "🚢🚢 ships ✈️ planes 🌊",
       "x" * 200,
       "word " * 90, "1234567890 3.14 1,000,000", "mixed CASE Words AND numbers 42nd", "tab\tseparated\tvalues",
       "caf\u00e9 vs cafe\u0301", "Ã©mojis mojibake fixed by ftfy", "&amp;amp; double-escaped",
       "a\u00a0non-breaking space",
       "hyphen-ated well-known state-of-the-art", "quote \"marks\" and 'single' ones", "path/to/file.tif #3 @home"]


def varied_captions() -> list[str]:
  """A few hundred captions: RS templates over classes and counts, plus edge cases."""
  out = []
  for i, (template, cls) in enumerate(itertools.product(TEMPLATES, CLASSES)):
    out.append(template.format(cls, (i * 7) % 31))
  return out + ODD


@pytest.fixture(scope="module")
def tok():
  return tokenizer_lib.from_file(open_clip.tokenizer.default_bpe())


def test_ids_equal_open_clip_on_varied_captions(tok):
  captions = varied_captions()
  assert len(captions) >= 250
  ref = open_clip.get_tokenizer("ViT-B-32")
  ours = tok.encode_batch(captions, 77)
  theirs = ref(captions).numpy()
  bad = [c for c, a, b in zip(captions, ours, theirs) if not np.array_equal(a, b)]
  assert not bad, f"{len(bad)} captions differ, e.g. {bad[:3]}"
  # Truncation keeps EOT last; the empty string is [SOT, EOT].
  assert ours[captions.index("word " * 90)][-1] == tok.eos_id
  assert list(ours[captions.index("")][:3]) == [tok.bos_id, tok.eos_id, 0]
  # Other context lengths too (phrases are encoded at 8 tokens).
  np.testing.assert_array_equal(tok.encode_batch(captions[:40], 8), ref(captions[:40], context_length=8).numpy())


def test_decode_inverts_encode_after_cleaning(tok):
  for text in ["a port with 12 ships.", "Ünïcödé straße 東京 🚢", "dense   residential\narea"]:
    assert tok.decode(tok.encode(text, 77)) == open_clip.get_tokenizer("ViT-B-32").decode(
        [i for i in tok.encode(text, 77) if i not in (0, tok.bos_id, tok.eos_id)]).strip()


def test_picklable_and_described(tok):
  again = pickle.loads(pickle.dumps(tok))
  np.testing.assert_array_equal(again.encode("a beach", 77), tok.encode("a beach", 77))
  assert (tok.vocab_size, tok.bos_id, tok.eos_id, tok.text_has_bos) == (49408, 49406, 49407, True)
  assert tokenizer_lib.special_ids(tok) == {"bos_id": 49406, "eos_id": 49407, "text_has_bos": True}


def test_bad_files_are_named(tmp_path):
  bad = tmp_path / "tokenizer_bpe.txt.gz"
  bad.write_bytes(b"not gzip")
  with pytest.raises(ValueError, match="tokenizer_bpe.txt.gz: not a gzipped CLIP BPE merges file"):
    tokenizer_lib.from_file(str(bad))
  with pytest.raises(FileNotFoundError, match="merges file not found: .*nope.txt.gz"):
    tokenizer_lib.from_file(str(tmp_path / "nope.txt.gz"))
  with pytest.raises(ValueError, match="Unknown tokenizer file .*vocab.json"):
    tokenizer_lib.from_file(str(tmp_path / "vocab.json"))
  assert clip_tokenizer.byte_symbols()[ord("a")] == "a" and len(set(clip_tokenizer.byte_symbols().values())) == 256
