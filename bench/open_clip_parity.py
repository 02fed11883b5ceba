r"""Parity of converted open_clip towers with open_clip itself, at the published sizes (random weights).

  python -m bench.open_clip_parity --out FILE [--models ViT-B-32,ViT-B-16] [--images 4]

For each architecture and activation (GELU, QuickGELU): an open_clip model with random weights is created
locally (no download), saved as .safetensors, converted with tools/convert_open_clip and loaded with
rsvlm_jax.load; the JSON holds the max abs difference of the L2-normalised image and text embeddings against
open_clip's encode_image/encode_text (float32, CPU), and the conversion time.
"""
from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np
from absl import app
from absl import flags

FLAGS = flags.FLAGS


def run(models: list[str], num_images: int) -> dict:
  import rsvlm_jax  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.tools import convert_open_clip  # pylint: disable=g-import-not-at-top
  from tests.convert import open_clip_models as ocm  # pylint: disable=g-import-not-at-top
  rows = []
  for name in models:
    for quick in (False, True):
      model = ocm.random_clip(name=name + ("-quickgelu" if quick else ""))
      size = model.visual.image_size[0]
      images = np.random.default_rng(0).integers(0, 256, (num_images, size, size, 3), dtype=np.uint8)
      ref_i, ref_t = ocm.reference_embeddings(model, images, ocm.TEXTS)
      with tempfile.TemporaryDirectory() as tmp:
        ckpt = ocm.save_state_dict(model, os.path.join(tmp, "m.safetensors"), "safetensors")
        del model
        t0 = time.time()
        out = convert_open_clip.convert(ckpt, os.path.join(tmp, "out"), model=name, quick_gelu=quick)
        convert_s = time.time() - t0
        loaded = rsvlm_jax.load(out)
        zi, zt = loaded.encode_images(images), loaded.encode_texts(ocm.TEXTS)
      rows.append({"model": name, "activation": "quick_gelu" if quick else "gelu", "image_size": size,
                   "image_max_abs_diff": float(np.abs(zi - ref_i).max()),
                   "text_max_abs_diff": float(np.abs(zt - ref_t).max()), "num_images": num_images,
                   "num_texts": len(ocm.TEXTS), "convert_seconds": round(convert_s, 1)})
      print(json.dumps(rows[-1]), flush=True)
  return {"rows": rows, "dtype": "float32", "device": "cpu"}


def main(argv):
  del argv
  result = run([m for m in FLAGS.models.split(",") if m], FLAGS.images)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out, "w") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  flags.DEFINE_string("out", None, "Output JSON.")
  flags.DEFINE_string("models", "ViT-B-32,ViT-B-16", "Comma-separated open_clip architecture names.")
  flags.DEFINE_integer("images", 4, "Random images per model.")
  flags.mark_flag_as_required("out")
  app.run(main)
