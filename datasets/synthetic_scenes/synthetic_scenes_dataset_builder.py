"""TFDS builder `synthetic_scenes`: procedurally generated aerial scenes with boxes, five captions, questions
and referring expressions.

Configs: `tiny` (unit tests), `demo` (the default; builds in well under a minute), `full`. Every example
is a pure function of (config seed, split, index), so builds are reproducible bit for bit.
"""
from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from rsvlm_datasets.synthetic_scenes import captions as captions_lib
from rsvlm_datasets.synthetic_scenes import questions as questions_lib
from rsvlm_datasets.synthetic_scenes import scene_generator as gen

SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
  sizes: dict = dataclasses.field(default_factory=dict)  # split -> number of examples.
  min_size: int = 128
  max_size: int = 320
  seed: int = 0


class Builder(tfds.core.GeneratorBasedBuilder):
  """Synthetic aerial scenes for demos and tests (no download)."""

  name = "synthetic_scenes"
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "1.1.0": "Features vqa (question, answer, type) and refer (expression, bbox) from the scene graph; "
                            "the other features keep their values."}
  BUILDER_CONFIGS = [
      SyntheticConfig(name="tiny", description="48/16/16 small scenes for unit tests.",
                      sizes={"train": 48, "validation": 16, "test": 16}, min_size=64, max_size=128, seed=7),
      SyntheticConfig(name="demo", description="2400/200/300 scenes of 128-320 px (the CPU demo).",
                      sizes={"train": 2400, "validation": 200, "test": 300}, min_size=128, max_size=320, seed=0),
      SyntheticConfig(name="full", description="20000/1000/2000 scenes of 256-1024 px.",
                      sizes={"train": 20000, "validation": 1000, "test": 2000}, min_size=256, max_size=1024,
                      seed=0),
  ]
  DEFAULT_CONFIG_NAME = "demo"

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
            "image_id": tfds.features.Text(),
            "captions": tfds.features.Sequence(tfds.features.Text(), length=5),
            "objects": tfds.features.Sequence({
                "bbox": tfds.features.BBoxFeature(),
                "label": tfds.features.ClassLabel(names=gen.OBJECT_CLASSES),
            }),
            "scene": tfds.features.ClassLabel(names=gen.SCENE_CLASSES),
            "complexity": tfds.features.Scalar(np.float32),
            "num_objects": tfds.features.Scalar(np.int32),
            "vqa": tfds.features.Sequence({
                "question": tfds.features.Text(),
                "answer": tfds.features.Text(),
                "type": tfds.features.Text(),  # presence, count, colour, position (questions.VQA_TYPES).
            }),
            "refer": tfds.features.Sequence({
                "expression": tfds.features.Text(),
                "bbox": tfds.features.BBoxFeature(),
            }),
        }),
        supervised_keys=None,
        homepage="https://github.com/rsvlm_jax/rsvlm_jax",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split, n) for split, n in self.builder_config.sizes.items()}

  def _generate_examples(self, split: str, num_examples: int):
    cfg = self.builder_config
    for index in range(num_examples):
      key, example = make_example(cfg.seed, split, index, cfg.min_size, cfg.max_size)
      yield key, example


def _png(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
  return buffer.getvalue()


def make_example(seed: int, split: str, index: int, min_size: int, max_size: int):
  """(key, feature dict) of one example; deterministic."""
  stream = seed * 10 + SPLIT_SEEDS[split]
  scene = gen.generate_scene(stream, index, min_size, max_size)
  rng = np.random.default_rng([stream, index, 1])
  qa_rng = np.random.default_rng([stream, index, 2])  # Its own stream: the other features do not move.
  vqa = questions_lib.make_vqa(scene, qa_rng)
  refer = questions_lib.make_refer(scene, qa_rng)
  image_id = f"{split}_{index:06d}"
  return image_id, {
      # Encoded here with PIL: TFDS would encode a numpy array with TensorFlow, which the runtime lacks.
      "image": _png(scene.image),
      "image_id": image_id,
      "captions": captions_lib.make_captions(scene, rng),
      "objects": {"bbox": [tfds.features.BBox(*np.clip(o.box, 0.0, 1.0)) for o in scene.objects],
                  "label": [o.label for o in scene.objects]},
      "scene": scene.scene,
      "complexity": np.float32(scene.complexity),
      "num_objects": np.int32(len(scene.objects)),
      "vqa": {k: [q[k] for q in vqa] for k in ("question", "answer", "type")},
      "refer": {"expression": [r["expression"] for r in refer],
                "bbox": [tfds.features.BBox(*r["bbox"]) for r in refer]},
  }
