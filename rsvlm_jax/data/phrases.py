"""Rule-based noun chunks from captions (no model download), for the local and object alignment levels.

A chunk is an optional count/quantity word, modifiers (colours and a small adjective list), and a noun
from a remote-sensing lexicon (one or two words, singular or plural). Unknown nouns are caught by a
fallback: a non-stop word right after a determiner or number.
"""
from __future__ import annotations

import re

NOUNS = {
    "building", "house", "roof", "car", "vehicle", "truck", "bus", "plane", "airplane", "aircraft", "ship", "boat",
    "tank", "tree", "road", "street", "highway", "bridge", "river", "lake", "pond", "sea", "ocean", "beach",
    "coast", "shore", "harbor", "harbour", "port", "pier", "dock", "runway", "airport", "airfield", "apron",
    "field", "farmland", "meadow", "grass", "grassland", "forest", "woods", "desert", "dune", "mountain", "hill",
    "area", "lot", "park", "square", "stadium", "court", "playground", "church", "school", "factory", "site",
    "railway", "track", "station", "parking", "neighbourhood", "neighborhood", "district", "valley", "water",
    "waves", "sand", "island", "crop", "crops", "soil", "land", "view", "image", "center", "part",
}
COMPOUNDS = {("storage", "tank"), ("parking", "lot"), ("residential", "area"), ("industrial", "area"),
             ("car", "park"), ("tennis", "court"), ("baseball", "field"), ("swimming", "pool"),
             ("industrial", "site"), ("river", "valley"), ("parking", "area"),
             ("desert", "area"), ("field", "area"), ("factory", "area"), ("airport", "apron")}
SKIP_HEADS = {"view", "image", "center", "part"}  # Layout words, not things.
COUNTS = {"a", "an", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "many",
          "several", "some", "few", "dozens", "lots", "numerous"}
MODIFIERS = {"white", "gray", "grey", "black", "red", "blue", "yellow", "green", "orange", "brown", "dark",
             "light", "large", "small", "big", "tall", "long", "wide", "narrow", "dense", "sparse", "empty",
             "calm", "sandy", "open", "busy", "straight", "curved", "old", "new", "agricultural", "bare", "aerial",
             "wooded", "riverside"}
DETERMINERS = {"a", "an", "the", "some", "this", "that", "these", "those", "its"}
STOP = {"of", "with", "and", "in", "on", "at", "near", "along", "is", "are", "there", "to", "by", "from", "next",
        "which", "it", "be", "as", "or", "seen", "above", "can", "including", "contains", "shows", "nothing", "but",
        "no", "lot", "so", "dozen", "number", "left", "right", "upper", "lower", "middle", "top", "bottom",
        "remote", "sensing", "stretch", "surface"}


def _singular(word: str) -> str:
  if word.endswith("ies") and len(word) > 4:
    return word[:-3] + "y"
  if word.endswith("es") and word[:-2] in NOUNS:
    return word[:-2]
  if word.endswith("s") and word[:-1] in NOUNS:
    return word[:-1]
  return word


def _is_noun(word: str) -> bool:
  return _singular(word) in NOUNS


def extract_phrases(caption: str, max_phrases: int = 8) -> list[str]:
  """Noun chunks in order of appearance, deduplicated, at most `max_phrases`."""
  words = re.findall(r"[a-z]+", caption.lower())
  chunks: list[str] = []
  i = 0
  while i < len(words):
    head_end = None
    if i + 1 < len(words) and (words[i], _singular(words[i + 1])) in COMPOUNDS:
      head_end = i + 2
    elif _is_noun(words[i]) and words[i] not in SKIP_HEADS:
      head_end = i + 1
    elif i > 0 and words[i - 1] in DETERMINERS | COUNTS and words[i] not in STOP | MODIFIERS | COUNTS | DETERMINERS | SKIP_HEADS:
      head_end = i + 1  # Fallback: an unknown noun after a determiner or number.
    if head_end is None:
      i += 1
      continue
    start = i
    while start > 0 and words[start - 1] in MODIFIERS:
      start -= 1
    if start > 0 and words[start - 1] in COUNTS - {"a", "an"}:
      start -= 1
    chunk = " ".join(words[start:head_end])
    if chunk not in chunks:
      chunks.append(chunk)
    i = head_end
  return chunks[:max_phrases]


def object_phrase(class_name: str, count: int | None = None) -> str:
  """'storage_tank' -> 'storage tank' (with a count word and plural when count > 1)."""
  name = class_name.replace("_", " ").strip()
  if count is None or count == 1:
    return name
  numbers = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
  word = numbers[count] if count < len(numbers) else "many"
  return f"{word} {name}s"
