"""Questions and referring expressions from a scene graph, each true of what the image shows.

`make_vqa(scene, rng)` gives {"question", "answer", "type"} dicts of four types:
  presence  "is there a ship in the image?"           yes / no (one of each per scene with objects)
  count     "how many cars are there?"                COUNT_BINS ("0" ... "10 or more")
  colour    "what colour is the ship?"                the colour of the only object of its class, or of
                                                      the clearly largest ("the largest building")
  position  "is the red car to the left of the ship?" yes / no (the boxes do not overlap along that axis)
`make_refer(scene, rng)` gives {"expression", "bbox"} dicts: "the red ship" -> its box [ymin, xmin, ymax, xmax].

Only what can be seen is asked: objects a later road crosses (`SceneObject.covered`) are never the subject of
a question or an expression, a class with such an object is not counted, and an object is described only if
the description fits no other object of the scene (covered ones included): its class alone, its colour and
class, or "largest" and its class when it has at least LARGEST_RATIO times the area of any other. Trees and storage tanks have one
colour, so colour never tells them apart.
"""
from __future__ import annotations

import collections

import numpy as np

from rsvlm_datasets.synthetic_scenes import captions as captions_lib
from rsvlm_datasets.synthetic_scenes import scene_generator as gen

VQA_TYPES = ("presence", "count", "colour", "position")
COUNT_BINS = ("0", "1", "2", "3", "4", "between 5 and 9", "10 or more")
ONE_COLOUR = ("tree", "storage_tank")  # Drawn in one colour only.
MAX_PER_TYPE = {"count": 2, "colour": 2, "position": 2}  # Presence: one yes and one no.
MAX_REFER = 3
LARGEST_RATIO = 1.5  # "the largest X": at least this many times the area of the next largest X.
_RELATIONS = {  # word -> (axis of the box coordinates (0 = y, 1 = x), whether the subject comes first).
    "to the left of": (1, True), "to the right of": (1, False), "above": (0, True), "below": (0, False)}


def count_answer(n: int) -> str:
  """A count as answered: exact up to four, then "between 5 and 9", "10 or more"."""
  return COUNT_BINS[n] if n <= 4 else COUNT_BINS[5] if n <= 9 else COUNT_BINS[6]


def _name(label: str) -> str:
  return captions_lib.SINGULAR[label]


def _article(noun: str) -> str:
  return ("an " if noun[0] in "aeiou" else "a ") + noun


def _area(o: gen.SceneObject) -> float:
  ymin, xmin, ymax, xmax = np.clip(o.box, 0, 1)
  return float((ymax - ymin) * (xmax - xmin))


def identified(objects: list[gen.SceneObject]) -> list[tuple[gen.SceneObject, str]]:
  """(object, "ship" / "largest building") for each visible object its class alone picks out, or being clearly
  (LARGEST_RATIO times) the largest of its class; no covered object of the class may be hiding."""
  by_class = collections.defaultdict(list)
  for o in objects:
    by_class[o.label].append(o)
  out = []
  for label in sorted(by_class):
    objs = by_class[label]
    if any(o.covered for o in objs):
      continue
    if len(objs) == 1:
      out.append((objs[0], _name(label)))
      continue
    big = sorted(objs, key=_area, reverse=True)
    if _area(big[0]) >= LARGEST_RATIO * _area(big[1]):
      out.append((big[0], f"largest {_name(label)}"))
  return out


def described(objects: list[gen.SceneObject], rng: np.random.Generator) -> list[tuple[gen.SceneObject, str]]:
  """(object, "red ship") for each visible object that one description fits alone: its class, its colour and
  class, or being the largest of its class (`identified`; the colour is added half the time)."""
  out = []
  for o, phrase in identified(objects):
    coloured = o.label not in ONE_COLOUR and rng.random() < 0.5
    out.append((o, f"{o.colour} {phrase}" if coloured and " " not in phrase else phrase))
  done = {id(o) for o, _ in out}
  same = collections.Counter((o.label, o.colour) for o in objects)
  for o in objects:
    if (id(o) not in done and not o.covered and o.label not in ONE_COLOUR and same[(o.label, o.colour)] == 1):
      out.append((o, f"{o.colour} {_name(o.label)}"))
  return out


def _presence(objects, rng) -> list[dict]:
  present = sorted({o.label for o in objects if not o.covered})
  absent = [c for c in gen.OBJECT_CLASSES if c not in {o.label for o in objects}]
  qs = []
  if present:
    qs.append((str(rng.choice(present)), "yes"))
  if absent and (present or rng.random() < 0.5):  # Empty scenes: "no" half the time, to keep yes/no balanced.
    qs.append((str(rng.choice(absent)), "no"))
  out = []
  for label, answer in qs:
    if rng.random() < 0.5:
      q = f"is there {_article(_name(label))} in the image?"
    else:
      q = f"are there any {captions_lib.PLURAL[label]}?"
    out.append({"question": q, "answer": answer, "type": "presence"})
  return out


def _count(objects, rng) -> list[dict]:
  counts = collections.Counter(o.label for o in objects)
  covered = {o.label for o in objects if o.covered}
  present = sorted(c for c in counts if c not in covered)
  absent = [c for c in gen.OBJECT_CLASSES if c not in counts]
  labels = [present[i] for i in rng.permutation(len(present))[:MAX_PER_TYPE["count"]]]
  if absent and (not labels or rng.random() < 0.2):  # Sometimes a class that is not there: "0".
    labels = labels[:MAX_PER_TYPE["count"] - 1] + [str(rng.choice(absent))]
  return [{"question": f"how many {captions_lib.PLURAL[label]} are there?", "answer": count_answer(counts[label]),
           "type": "count"} for label in labels]


def _colour(objects, rng) -> list[dict]:
  known = [(o, phrase) for o, phrase in identified(objects) if o.label not in ONE_COLOUR]
  picked = [known[i] for i in sorted(rng.permutation(len(known))[:MAX_PER_TYPE["colour"]])]
  return [{"question": f"what colour is the {phrase}?", "answer": o.colour, "type": "colour"} for o, phrase in picked]


def relation(a: gen.SceneObject, b: gen.SceneObject, word: str) -> bool | None:
  """Whether `a` is `word` (e.g. "to the left of") `b`; None when their boxes overlap along that axis."""
  axis, first = _RELATIONS[word]
  lo_a, hi_a, lo_b, hi_b = a.box[axis], a.box[axis + 2], b.box[axis], b.box[axis + 2]
  if hi_a <= lo_b:
    return first
  if hi_b <= lo_a:
    return not first
  return None


def _position(rng, named) -> list[dict]:
  pairs = [(i, j) for i in range(len(named)) for j in range(len(named)) if i != j]
  out, asked = [], set()
  for k in rng.permutation(len(pairs)):
    if len(out) == MAX_PER_TYPE["position"]:
      break
    if frozenset(pairs[k]) in asked:
      continue
    (a, name_a), (b, name_b) = named[pairs[k][0]], named[pairs[k][1]]
    want = bool(rng.random() < 0.5)
    words = [w for w in _RELATIONS if relation(a, b, w) is want]
    if not words:
      continue
    word = str(rng.choice(words))
    asked.add(frozenset(pairs[k]))
    out.append({"question": f"is the {name_a} {word} the {name_b}?", "answer": "yes" if want else "no",
                "type": "position"})
  return out


def make_vqa(scene: gen.Scene, rng: np.random.Generator) -> list[dict]:
  """Questions about `scene` (see the module doc), presence, count, colour, then position."""
  named = described(scene.objects, rng)
  return (_presence(scene.objects, rng) + _count(scene.objects, rng) + _colour(scene.objects, rng)
          + _position(rng, named))


def make_refer(scene: gen.Scene, rng: np.random.Generator) -> list[dict]:
  """Up to MAX_REFER referring expressions ("the red ship") with the box of the one object each fits."""
  named = described(scene.objects, rng)
  picked = sorted(rng.permutation(len(named))[:MAX_REFER])
  return [{"expression": f"the {named[i][1]}", "bbox": tuple(float(v) for v in np.clip(named[i][0].box, 0, 1))}
          for i in picked]
