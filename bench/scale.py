r"""Ingestion at scale, simulated: webdataset shards of small JPEGs built with 1 and N workers.

  python -m bench.scale --images 2000 --shards 8 --worker_counts 1,2 --out bench/results/scale_build.json

Writes RS5M-layout shards (img_content, img_name, caption) of random JPEGs with Python's tarfile (the format
webdataset.TarWriter writes; the tests check the reader against TarWriter itself), builds
caption_webdataset/rs5m from them once per worker count (fresh --data_dir each time), and writes
{"images", "shards", "image_px", "rows": [{"workers", "seconds", "images_per_s"}]}. The time covers the whole
build command (worker start, reading, header checks, serializing, finalize), not the shard generation.
"""
from __future__ import annotations

import io
import json
import os
import platform
import shutil
import tarfile
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

_OUT = flags.DEFINE_string("out", "bench_results/scale_build.json", "Output JSON.")
_IMAGES = flags.DEFINE_integer("images", 2000, "Images in all shards.")
_SHARDS = flags.DEFINE_integer("shards", 8, "Shards (tars) they are split into.")
_PX = flags.DEFINE_integer("px", 64, "Side of each (square) JPEG.")
_WORKER_COUNTS = flags.DEFINE_list("worker_counts", ["1", "2"], "Worker counts to measure.")
_TMP = flags.DEFINE_string("tmp", "", "Scratch folder (default: a new temporary one, deleted at the end).")


def _jpeg(rng, px: int) -> bytes:
  buffer = io.BytesIO()
  base = rng.integers(0, 255, (px // 8, px // 8, 3), dtype=np.uint8)  # Blocky: sizes like real small JPEGs.
  Image.fromarray(np.kron(base, np.ones((8, 8, 1), np.uint8))).save(buffer, format="JPEG", quality=90)
  return buffer.getvalue()


def write_shards(folder: str, images: int, shards: int, px: int) -> list[str]:
  """RS5M-layout shards pub11-train-NNNN.tar; returns their paths."""
  rng, paths = np.random.default_rng(0), []
  per = -(-images // shards)
  for s in range(shards):
    path = os.path.join(folder, f"pub11-train-{s:04d}.tar")
    with tarfile.open(path, "w") as tar:
      for i in range(s * per, min(images, (s + 1) * per)):
        for ext, data in (("img_content", _jpeg(rng, px)), ("img_name", f"{i}.jpg".encode()),
                          ("caption", f"an aerial scene {i}".encode())):
          info = tarfile.TarInfo(f"{i:09d}.{ext}")
          info.size = len(data)
          tar.addfile(info, io.BytesIO(data))
    paths.append(path)
  return paths


def main(argv):
  del argv
  from rsvlm_jax import build_dataset  # pylint: disable=g-import-not-at-top
  root = _TMP.value or tempfile.mkdtemp(prefix="bench_scale_")
  manual = os.path.join(root, "shards")
  os.makedirs(manual, exist_ok=True)
  write_shards(manual, _IMAGES.value, _SHARDS.value, _PX.value)
  rows = []
  try:
    for workers in map(int, _WORKER_COUNTS.value):
      data_dir = os.path.join(root, f"tfds_w{workers}")
      t0 = time.perf_counter()
      builder = build_dataset.build("caption_webdataset/rs5m", data_dir, manual, workers=workers)
      seconds = time.perf_counter() - t0
      n = builder.info.splits["train"].num_examples
      rows.append({"workers": workers, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 1)})
  finally:
    if not _TMP.value:
      shutil.rmtree(root, ignore_errors=True)
  payload = {"images": _IMAGES.value, "shards": _SHARDS.value, "image_px": _PX.value, "rows": rows,
             "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(payload, f, indent=2)
  print(json.dumps(payload, indent=2))


if __name__ == "__main__":
  app.run(main)
