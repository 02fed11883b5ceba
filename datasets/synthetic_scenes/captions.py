"""Five varied captions per scene from its scene graph: scene type, classes, counts, colours, places.

Counts and colours of small objects (cars, boats, trees) are part of the text, so a model that cannot
see them at low resolution loses caption and retrieval quality: resolution matters to the metrics.
"""
from __future__ import annotations

import collections

import numpy as np

SCENE_NAMES = {
    "sea": ("sea", "open sea", "stretch of sea"), "desert": ("desert", "sandy desert", "desert area"),
    "forest": ("forest", "dense forest", "wooded area"), "farmland": ("farmland", "agricultural area", "field area"),
    "residential": ("residential area", "neighbourhood", "residential district"),
    "harbor": ("harbor", "port", "harbour area"), "airport": ("airport", "airfield", "airport apron"),
    "parking_lot": ("parking lot", "car park", "parking area"),
    "industrial": ("industrial area", "industrial site", "factory area"),
    "river": ("river", "river valley", "riverside area"),
}
EMPTY_SCENE = {
    "sea": ("a calm blue sea with small waves", "an empty sea surface", "open water with gentle waves"),
    "desert": ("an empty desert with sand dunes", "a dry sandy desert", "bare desert land with dunes"),
}
PLURAL = {"building": "buildings", "car": "cars", "plane": "planes", "ship": "ships", "storage_tank": "storage tanks",
          "tree": "trees", "boat": "boats"}
SINGULAR = {"building": "building", "car": "car", "plane": "plane", "ship": "ship", "storage_tank": "storage tank",
            "tree": "tree", "boat": "boat"}
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FEATURE_PLACES = {"ship": "along the pier", "boat": "on the water", "plane": "near the runway",
                  "car": "on the road", "tree": "along the road"}


def count_phrase(n: int, rng: np.random.Generator) -> str:
  """Exact small numbers; vaguer quantities for large counts."""
  if n < len(NUMBERS):
    return NUMBERS[n] if n > 1 or rng.random() < 0.5 else "a"
  if n < 20:
    return str(rng.choice(["several", "a dozen or so", "many"])) if n < 15 else "many"
  return str(rng.choice(["many", "lots of", "a large number of", "dozens of"]))


def place_of(boxes: np.ndarray) -> str:
  """Where the objects are: the region of their mean centre on a 3 x 3 grid."""
  cy = float(((boxes[:, 0] + boxes[:, 2]) / 2).mean())
  cx = float(((boxes[:, 1] + boxes[:, 3]) / 2).mean())
  row = "upper" if cy < 0.36 else ("lower" if cy > 0.64 else "")
  col = "left" if cx < 0.36 else ("right" if cx > 0.64 else "")
  if row and col:
    return f"in the {row} {col}"
  if row:
    return f"in the {row} part"
  if col:
    return f"on the {col}"
  return "in the center"


def _dominant_colour(objs) -> str | None:
  colours = collections.Counter(o.colour for o in objs)
  colour, n = colours.most_common(1)[0]
  return colour if n >= max(1, 0.6 * len(objs)) else None


def object_phrases(objects, rng, *, colour=True, place=True, features=()) -> list[str]:
  """One noun phrase per object class, most numerous first ('three white planes near the runway')."""
  by_class = collections.defaultdict(list)
  for o in objects:
    by_class[o.label].append(o)
  phrases = []
  for label, objs in sorted(by_class.items(), key=lambda kv: (-len(kv[1]), kv[0])):
    n = len(objs)
    words = [count_phrase(n, rng)]
    c = _dominant_colour(objs) if colour and label not in ("tree",) else None
    if c and rng.random() < 0.7:
      words.append(c)
    words.append(PLURAL[label] if n > 1 else SINGULAR[label])
    if place:
      special = FEATURE_PLACES.get(label)
      if special and special.split()[-1] in " ".join(features) and rng.random() < 0.5:
        words.append(special)
      else:
        words.append(place_of(np.array([o.box for o in objs])))
    phrases.append(" ".join(words))
  return phrases


def _join(parts: list[str]) -> str:
  if len(parts) == 1:
    return parts[0]
  return ", ".join(parts[:-1]) + " and " + parts[-1]


def _density(complexity: float) -> str:
  return "sparse" if complexity < 0.3 else ("busy" if complexity < 0.65 else "dense")


def make_captions(scene, rng: np.random.Generator, k: int = 5) -> list[str]:
  """k different captions (lowercase sentences ending in '.') describing `scene` (a scene_generator.Scene)."""
  names = SCENE_NAMES[scene.scene]
  objs = scene.objects
  feats = scene.features
  if not objs:
    base = EMPTY_SCENE.get(scene.scene, (f"an empty {names[0]}", f"a quiet {names[1]}", f"a {names[0]} with no objects"))
    options = [f"an aerial view of {base[0]}.", f"this image shows {base[1]}.", f"{base[2]} seen from above.",
               f"a remote sensing image of {base[0]}.", f"there is nothing but {names[0]} in this image."]
    return options[:k]
  templates = [
      lambda: f"an aerial view of {_a(names[0])} with {_join(object_phrases(objs, rng, place=False)[:3])}.",
      lambda: f"{object_phrases(objs, rng)[0]} {'are' if _plural(objs) else 'is'} in this {names[1]}.",
      lambda: f"there {'are' if _plural(objs) else 'is'} {_join(object_phrases(objs, rng, colour=False)[:2])}.",
      lambda: f"{_a(_density(scene.complexity))} {names[2]} with {_join(object_phrases(objs, rng, features=feats)[:2])}.",
      lambda: (f"this {names[0]} contains {_join(object_phrases(objs, rng, place=False, colour=False)[:3])}"
               + (f" next to a {feats[0]}" if feats and feats[0] not in names[0] else "") + "."),
      lambda: f"many objects can be seen in the {names[1]}, including {_join(object_phrases(objs, rng)[:3])}.",
  ]
  captions, seen = [], set()
  for t in templates:
    c = " ".join(t().split())
    if c not in seen:
      captions.append(c)
      seen.add(c)
    if len(captions) == k:
      break
  while len(captions) < k:  # Defensive: never fewer than k.
    captions.append(captions[len(captions) % len(captions)])
  return captions


def _a(phrase: str) -> str:
  return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _plural(objs) -> bool:
  counts = collections.Counter(o.label for o in objs)
  return counts.most_common(1)[0][1] > 1
