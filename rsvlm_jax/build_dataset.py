r"""Builds any rsvlm_jax TFDS dataset as array_record, without TensorFlow.

  python -m rsvlm_jax.build_dataset NAME --data_dir=D [--manual_dir=M] [--overwrite]
  python -m rsvlm_jax.build_dataset synthetic_scenes/demo --data_dir=data
  python -m rsvlm_jax.build_dataset rsicd/dedup --manual_dir=/data/raw/rsicd --data_dir=/data/tfds

NAME is a builder name with an optional config (see datasets/__init__.py for the list). An existing
complete build is reused unless --overwrite, which builds into a temporary folder inside --data_dir and
swaps it in only once complete: a rebuild that fails leaves the old build as it was. TFDS's own
`tfds build` imports TensorFlow; this does not.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
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
  _check_writable(data_dir)
  t0 = time.time()
  download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
  if overwrite and os.path.isdir(builder.data_dir):
    _rebuild(name, data_dir, builder.data_dir, download_config)
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  else:
    builder.download_and_prepare(download_config=download_config)
  sizes = {split: info.num_examples for split, info in builder.info.splits.items()}
  logging.info("Built %s in %.1fs into %s: %s", name, time.time() - t0, builder.data_dir, sizes)
  print(f"Built {name} in {time.time() - t0:.1f}s into {builder.data_dir}: {sizes}", flush=True)
  return builder


def _check_writable(data_dir: str) -> None:
  """Creates data_dir and writes a probe file in it; failures name --data_dir."""
  try:
    os.makedirs(data_dir, exist_ok=True)
    with tempfile.TemporaryFile(dir=data_dir):
      pass
  except OSError as e:
    raise PermissionError(f"--data_dir {data_dir} is not writable: {e.strerror or e}") from e


def _rebuild(name: str, data_dir: str, final_dir: str, download_config) -> None:
  """Builds `name` under a temporary root in data_dir, then swaps it in for final_dir."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  staging = tempfile.mkdtemp(prefix=".rebuild-", dir=data_dir)
  try:
    fresh = tfds.builder(name, data_dir=staging, file_format="array_record")
    fresh.download_and_prepare(download_config=download_config)
    old = os.path.join(staging, "old")
    os.rename(final_dir, old)
    try:
      os.rename(fresh.data_dir, final_dir)
    except OSError:
      os.rename(old, final_dir)
      raise
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m rsvlm_jax.build_dataset NAME --data_dir=D [--manual_dir=M]")
  try:
    build(argv[1], _DATA_DIR.value, _MANUAL_DIR.value, _OVERWRITE.value)
  except (ValueError, FileNotFoundError, PermissionError, AssertionError) as e:
    print(f"build_dataset: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
