r"""Builds any rsvlm_jax TFDS dataset as array_record, without TensorFlow.

  python -m rsvlm_jax.build_dataset NAME --data_dir=D [--manual_dir=M] [--overwrite]
  python -m rsvlm_jax.build_dataset synthetic_scenes/demo --data_dir=data
  python -m rsvlm_jax.build_dataset rsicd/dedup --manual_dir=/data/raw/rsicd --data_dir=/data/tfds

NAME is a builder name with an optional config (see datasets/__init__.py for the list). An existing
complete build is reused unless --overwrite. TFDS's own `tfds build` imports TensorFlow; this does not.
"""
from __future__ import annotations

import os
import shutil
import sys
import time

from absl import app
from absl import flags
from absl import logging

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the built dataset goes.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Folder with the manually downloaded raw data.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Rebuild even if a complete build exists.")
flags.mark_flag_as_required("data_dir")


def build(name: str, data_dir: str, manual_dir: str | None = None, overwrite: bool = False):
  """Builds `name` into `data_dir`; returns the builder. Errors name the dataset and the folder."""
  import rsvlm_datasets  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  rsvlm_datasets.import_builder(name)
  if manual_dir is not None and not os.path.isdir(manual_dir):
    raise FileNotFoundError(f"--manual_dir does not exist: {manual_dir}")
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  if builder.is_prepared() and not overwrite:
    logging.info("%s already built in %s; reusing it (pass --overwrite to rebuild)", name, builder.data_dir)
    return builder
  if overwrite and os.path.isdir(builder.data_dir):
    shutil.rmtree(builder.data_dir)
  t0 = time.time()
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  sizes = {split: info.num_examples for split, info in builder.info.splits.items()}
  logging.info("Built %s in %.1fs into %s: %s", name, time.time() - t0, builder.data_dir, sizes)
  print(f"Built {name} in {time.time() - t0:.1f}s into {builder.data_dir}: {sizes}", flush=True)
  return builder


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m rsvlm_jax.build_dataset NAME --data_dir=D [--manual_dir=M]")
  try:
    build(argv[1], _DATA_DIR.value, _MANUAL_DIR.value, _OVERWRITE.value)
  except (ValueError, FileNotFoundError, AssertionError) as e:
    print(f"build_dataset: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
