"""ptb_tokenizer.tokenize vs pycocoevalcap's Java PTBTokenizer (Stanford CoreNLP 3.4.1)."""
from __future__ import annotations

import random
import shutil

import pytest

from rsvlm_jax.evaluate import ptb_tokenizer

TRICKY = [
    # contractions and apostrophes
    "A man can't go.", "It's the dog's bone; isn't it?", "I'm, we've, you'll, he'd, they're",
    "I'd've shouldn't've won't", "cannot gonna wanna gotta lemme gimme", "'tis 'twas",
    "dogs' toys and the boss's car", "o'clock rock'n'roll ma'am y'all '90s", "don’t it’s o’clock",
    "McDonald's D'Arcy O'Neil l'amour",
    # hyphens and dashes
    "Well-known state-of-the-art e-mail x-ray", "a 5-year-old 1.5-meter-wide road", "a -- b - c --- d",
    "hyphen- dangling -prefix", "–— dashes", "trees,green-belts and well,known",
    # numbers, currency, fractions
    "3.5 meters, 3,000 people and 10% of $5.", "12:30 and -5 and +3 and .5", "1/2 cup ½ and 1 1/2 cups",
    "2.5km 3km 2x3 1990s 1st", "US$5 £5 €5 50¢", "#1 and # 5",
    # punctuation, brackets, quotes
    'He said "hello" to \'them\'.', "“curly” ‘quotes’ «guillemets»", "a (small) [red] {blue} car",
    "wait... what?! no!! really?", "`quoted'' text``", "a:b; c, d", "end with period .", "Hi.. Hi.... Hi. . .",
    "a/b and c*d and & and @ and = and ~", "smile :) :-( ;D",
    # abbreviations and initials
    "Mr. Smith lives in the U.S. near St. Louis", "e.g. i.e. etc. a.m. p.m.", "there is a. and plan b.",
    "see fig. 3 and no. 5", "area.The next", "area., and etc.,",
    # whitespace and case
    "multiple   spaces\tand\ttabs", "line one\nline two", "CAPS AND MiXeD", "", "   ", "...",
    "Café naïve Zürich's 北京",
]

# Pinned outputs (checked against Java once); run without Java too.
EXPECTED = {
    "A man can't go.": "a man ca n't go",
    "It's the dog's bone; isn't it?": "it 's the dog 's bone is n't it",
    "cannot gonna": "can not gon na",
    "Well-known state-of-the-art e-mail": "well-known state-of-the-art e-mail",
    "3.5 meters, 3,000 people and 10% of $5.": "3.5 meters 3,000 people and 10 % of $ 5",
    "a (small) [red] {blue} car": "a -lrb- small -rrb- -lsb- red -rsb- -lcb- blue -rcb- car",
    'He said "hello" to \'them\'.': "he said hello to them",
    "wait... what?! no!!": "wait what ?! no !!",
    "Mr. Smith lives in the U.S.": "mr. smith lives in the u.s.",
    "multiple   spaces\tand\nlines": "multiple spaces and lines",
    "there are 2 tennis courts , a road and many trees .": "there are 2 tennis courts a road and many trees",
    "": "",
}


@pytest.mark.parametrize("text,expected", sorted(EXPECTED.items()))
def test_pinned_outputs(text, expected):
  assert ptb_tokenizer.tokenize(text) == expected


def test_rejects_non_strings():
  with pytest.raises(TypeError):
    ptb_tokenizer.tokenize(None)


def _caption_like(rng: random.Random, n: int) -> list[str]:
  words = ["a", "the", "building", "Trees", "green", "It's", "can't", "dogs'", "3", "3.5", "1,000", "12:30",
           "well-known", "x-ray", "(", ")", "[", '"', "'", "“", "”", ",", ".", ";", ":", "?", "!", "...", "--",
           "-", "&", "/", "%", "$5", "U.S.", "Mr.", "e.g.", "st", "co", "b", "gonna", "o'clock", "½", "café"]
  out = []
  for _ in range(n):
    s = ""
    for _ in range(rng.randint(1, 12)):
      s += rng.choice(words) + rng.choice([" ", " ", " ", "", "  ", "\t", "\n"])
    out.append(s.strip(" ") + rng.choice([".", " .", "", "!"]))
  return out


@pytest.fixture(scope="module")
def java_tokenize():
  """Tokenizes a list of captions with pycocoevalcap's PTBTokenizer (one Java call)."""
  if shutil.which("java") is None:
    pytest.skip("`java` is not on PATH: pycocoevalcap's PTBTokenizer needs Java")
  tokenizer = pytest.importorskip("pycocoevalcap.tokenizer.ptbtokenizer")

  def run(captions):
    # A trailing sentinel: some lexer rules peek at the next caption (see the module docstring).
    batch = {i: [{"caption": c}] for i, c in enumerate(list(captions) + ["x"])}
    out = tokenizer.PTBTokenizer().tokenize(batch)
    return [out[i][0] for i in range(len(captions))]
  return run


def test_tricky_strings_match_java(java_tokenize):
  expected = java_tokenize(TRICKY)
  ours = [ptb_tokenizer.tokenize(t) for t in TRICKY]
  mismatches = [(t, e, o) for t, e, o in zip(TRICKY, expected, ours) if e != o]
  assert not mismatches


def test_pinned_outputs_match_java(java_tokenize):
  texts = sorted(EXPECTED)
  assert java_tokenize(texts) == [EXPECTED[t] for t in texts]


def test_random_caption_like_strings_match_java(java_tokenize):
  texts = _caption_like(random.Random(0), 300)
  expected = java_tokenize(texts)
  mismatches = [(t, e, ptb_tokenizer.tokenize(t)) for t, e in zip(texts, expected)
                if e != ptb_tokenizer.tokenize(t)]
  assert not mismatches
