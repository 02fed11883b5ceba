"""synthetic_scenes: TFDS's harness, questions and expressions true of the scene graph, other features unchanged."""
import collections
import hashlib
import io
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from rsvlm_datasets.synthetic_scenes import questions
from rsvlm_datasets.synthetic_scenes import scene_generator as gen
from rsvlm_datasets.synthetic_scenes import synthetic_scenes_dataset_builder as builder_lib

TINY, DEMO = builder_lib.Builder.BUILDER_CONFIGS[:2]
NAMES = {name: label for label, name in questions.captions_lib.SINGULAR.items()}
PLURALS = {name: label for label, name in questions.captions_lib.PLURAL.items()}


class SyntheticScenesTinyTest(tfds.testing.DatasetBuilderTestCase):
  """Config `tiny` (no download: the harness only checks the build and the split sizes)."""
  DATASET_CLASS = builder_lib.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
  SPLITS = {"train": 48, "validation": 16, "test": 16}
  SKIP_CHECKSUMS = True
  EXAMPLE_DIR = builder_lib.Builder.code_path.parent  # Nothing is read from it: the builder downloads nothing.


def _example(cfg, split, index):
  _, ex = builder_lib.make_example(cfg.seed, split, index, cfg.min_size, cfg.max_size)
  scene = gen.generate_scene(cfg.seed * 10 + builder_lib.SPLIT_SEEDS[split], index, cfg.min_size, cfg.max_size)
  return ex, scene


def _area(o):
  y0, x0, y1, x1 = np.clip(o.box, 0, 1)
  return (y1 - y0) * (x1 - x0)


def _matches(scene, phrase):
  """The objects of `scene` a description ("red ship", "largest building", "ship") fits, covered ones too."""
  words = phrase.split(" ")
  label = NAMES[" ".join(w for w in words if w != "largest" and w not in gen.COLOURS)]
  objs = [o for o in scene.objects if o.label == label]
  if "largest" in words:
    big = sorted(objs, key=_area, reverse=True)
    objs = big[:1] if len(big) == 1 or _area(big[0]) >= 1.5 * _area(big[1]) else big
  colour = [w for w in words if w in gen.COLOURS]
  return [o for o in objs if not colour or o.colour == colour[0]]


def _the_one(scene, phrase):
  found = _matches(scene, phrase)
  assert len(found) == 1 and not found[0].covered and not any(
      o.covered for o in scene.objects if o.label == found[0].label and "largest" in phrase), phrase
  return found[0]


def _answer(scene, question):
  """The answer to `question`, worked out here from the scene graph."""
  visible = collections.Counter(o.label for o in scene.objects if not o.covered)
  every = collections.Counter(o.label for o in scene.objects)
  if m := re.fullmatch(r"is there an? (.+) in the image\?|are there any (.+)\?", question):
    label = NAMES[m.group(1)] if m.group(1) else PLURALS[m.group(2)]
    assert visible[label] or not every[label], question  # Never asked about a class seen only under a road.
    return "yes" if visible[label] else "no"
  if m := re.fullmatch(r"how many (.+) are there\?", question):
    label = PLURALS[m.group(1)]
    assert visible[label] == every[label], question
    n = every[label]
    return str(n) if n <= 4 else "between 5 and 9" if n <= 9 else "10 or more"
  if m := re.fullmatch(r"what colour is the (.+)\?", question):
    return _the_one(scene, m.group(1)).colour
  m = re.fullmatch(r"is the (.+) (to the left of|to the right of|above|below) the (.+)\?", question)
  a, b = _the_one(scene, m.group(1)), _the_one(scene, m.group(3))
  ay, ax, ay1, ax1 = a.box
  by, bx, by1, bx1 = b.box
  truth = {"to the left of": ax1 <= bx, "to the right of": bx1 <= ax, "above": ay1 <= by, "below": by1 <= ay}
  other = {"to the left of": "to the right of", "to the right of": "to the left of", "above": "below",
           "below": "above"}
  assert truth[m.group(2)] or truth[other[m.group(2)]], question  # Apart along the axis asked about.
  return "yes" if truth[m.group(2)] else "no"


@pytest.mark.parametrize("cfg, split", [(TINY, "train"), (DEMO, "test")])
def test_questions_and_expressions_are_true_of_the_scene(cfg, split):
  types = collections.Counter()
  for index in range(40):
    ex, scene = _example(cfg, split, index)
    for question, answer, kind in zip(ex["vqa"]["question"], ex["vqa"]["answer"], ex["vqa"]["type"]):
      assert kind in questions.VQA_TYPES and answer == _answer(scene, question), (index, question, answer)
      types[kind] += 1
    for expression, box in zip(ex["refer"]["expression"], ex["refer"]["bbox"]):
      obj = _the_one(scene, expression.removeprefix("the "))
      np.testing.assert_allclose(tuple(box), np.clip(obj.box, 0, 1))
  assert min(types[t] for t in questions.VQA_TYPES) >= 3, types  # Every type is asked.


def test_every_split_has_questions_and_expressions():
  for split in TINY.sizes:
    exs = [_example(TINY, split, i)[0] for i in range(8)]
    assert sum(len(ex["vqa"]["question"]) for ex in exs) > 8 and sum(len(ex["refer"]["bbox"]) for ex in exs)


def test_a_road_over_an_object_marks_it_covered():
  """Industrial scenes draw their road after the tanks and buildings: what it crosses is left out of questions."""
  seen = 0
  for index in range(60):
    scene = gen.generate_scene(3, index, 128, 320, scene="industrial")
    for o in scene.objects:
      seen += o.covered
      if o.covered:
        assert o.box[1] * scene.image.shape[1] < scene.image.shape[1] * 0.55 + 16  # Near the road at x = 0.55 w.
  assert seen


# The other features as builder version 1.0.0 (before the questions) made them.
GOLDEN = {
    ("tiny", "test", 0): {
        "pixels": "aed8842ccce90542", "boxes": "6a8496578cb42b70", "scene": "industrial", "complexity": 0.360259,
        "num_objects": 7, "labels": ["storage_tank"] * 5 + ["building"] * 2,
        "captions": ["an aerial view of an industrial area with five white storage tanks and two buildings.",
                     "five white storage tanks in the lower left are in this industrial site.",
                     "there are five storage tanks in the lower left and two buildings on the right.",
                     "a busy factory area with five white storage tanks in the lower left and two gray buildings on "
                     "the right.",
                     "this industrial area contains five storage tanks and two buildings next to a road."]},
    ("demo", "train", 3): {
        "pixels": "a13eb777fc11c092", "boxes": "63bcb2c0b842e55c", "scene": "residential", "complexity": 0.667324,
        "num_objects": 23, "labels": ["building"] * 11 + ["car"] * 8 + ["tree"] * 4,
        "captions": ["an aerial view of a residential area with several buildings, eight cars and four trees.",
                     "several buildings in the center are in this neighbourhood.",
                     "there are a dozen or so buildings in the center and eight cars in the center.",
                     "a dense residential district with many buildings in the center and eight cars in the center.",
                     "this residential area contains several buildings, eight cars and four trees next to a road."]},
}


def _digest(ex):
  pixels = np.asarray(Image.open(io.BytesIO(ex["image"])).convert("RGB"))
  boxes = np.round(np.asarray([tuple(b) for b in ex["objects"]["bbox"]], np.float64), 6)
  return {"pixels": hashlib.sha256(pixels.tobytes()).hexdigest()[:16], "captions": ex["captions"],
          "labels": ex["objects"]["label"], "boxes": hashlib.sha256(boxes.tobytes()).hexdigest()[:16],
          "scene": ex["scene"], "complexity": round(float(ex["complexity"]), 6), "num_objects": int(ex["num_objects"])}


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_other_features_keep_their_values_for_a_seed(key):
  cfg = {c.name: c for c in builder_lib.Builder.BUILDER_CONFIGS}[key[0]]
  ex, _ = _example(cfg, key[1], key[2])
  assert _digest(ex) == GOLDEN[key]
