r"""Builds any rsvlm_jax TFDS dataset as array_record, without TensorFlow.

  python -m rsvlm_jax.build_dataset NAME --data_dir=D [--manual_dir=M] [--overwrite]
  python -m rsvlm_jax.build_dataset synthetic_scenes/demo --data_dir=data
  python -m rsvlm_jax.build_dataset rsicd/dedup --manual_dir=/data/raw/rsicd --data_dir=/data/tfds

  python -m rsvlm_jax.build_dataset caption_webdataset/rs5m --manual_dir=/data/rs5m --data_dir=D --workers 8

Builders read from many archives (caption_webdataset) build in parallel and resume after a kill: each input
shard becomes its own array_record file in `--workers` processes; finished shards are kept, a rerun does the
rest. Across machines: `--num_shards K --shard_index i` on each (same --data_dir, e.g. a shared mount), then
one `--finalize` writes the TFDS metadata. Skipped records are counted by reason and written, with the first
few by shard and key, to build_summary.json in the built dataset's folder.

NAME is a builder name with an optional config (see datasets/__init__.py for the list). An existing
complete build is reused unless --overwrite, which builds into a temporary folder inside --data_dir and
swaps it in only once complete: a rebuild that fails leaves the old build as it was. TFDS's own
`tfds build` imports TensorFlow; this does not. A bad NAME, flag or folder (missing --manual_dir, unwritable
--data_dir) is one line `build_dataset: error: ...` on stderr, exit status 2.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

from absl import flags
from absl import logging

from rsvlm_jax.runtime import cli

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the built dataset goes.", flag_values=FLAGS)
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Folder with the manually downloaded raw data.",
                                  flag_values=FLAGS)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Rebuild even if a complete build exists.", flag_values=FLAGS)
_WORKERS = flags.DEFINE_integer("workers", 1, "Worker processes (builders that read archives: caption_webdataset).",
                                flag_values=FLAGS)
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Machines sharing the build; each builds every K-th input.",
                                   flag_values=FLAGS)
_SHARD_INDEX = flags.DEFINE_integer("shard_index", 0, "This machine's share, 0 .. --num_shards - 1.",
                                    flag_values=FLAGS)
_FINALIZE = flags.DEFINE_bool("finalize", False, "Only write the dataset from the finished shards of all machines.",
                              flag_values=FLAGS)
_MAX_SIDE = flags.DEFINE_integer("max_side", 0, "Store images at most this many px a side (larger ones are "
                                 "scaled down and re-encoded); 0 keeps them as they are.", flag_values=FLAGS)
flags.mark_flag_as_required("data_dir", flag_values=FLAGS)
POSITIONAL = ("NAME",)  # The builder (with an optional config): rsicd, caption_webdataset/rs5m, ...

PARALLEL_FLAGS = ("--workers", "--num_shards", "--shard_index", "--finalize", "--max_side")


def _check_parallel_flags(name, builder_cls, workers, num_shards, shard_index, finalize, max_side):
  """Flag errors (cli.UserError) before any slow work; returns whether `name` builds by units."""
  from rsvlm_datasets import parallel_build  # pylint: disable=g-import-not-at-top
  if workers < 1:
    raise cli.UserError(f"--workers must be at least 1, got {workers}")
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise cli.UserError(f"--shard_index must be in [0, --num_shards={num_shards}), got {shard_index}")
  if max_side < 0 or 0 < max_side < 16:
    raise cli.UserError(f"--max_side must be 0 (keep sizes) or at least 16 px, got {max_side}")
  by_units = issubclass(builder_cls, parallel_build.UnitBuilder)
  if not by_units and (workers > 1 or num_shards > 1 or finalize or max_side):
    raise cli.UserError(f"{name} builds in one process; {', '.join(PARALLEL_FLAGS)} apply to builders that read "
                        "archives (caption_webdataset)")
  return by_units


def build(name: str, data_dir: str, manual_dir: str | None = None, overwrite: bool = False, *, workers: int = 1,
          num_shards: int = 1, shard_index: int = 0, finalize: bool = False, max_side: int = 0):
  """Builds `name` into `data_dir`; returns the builder. Errors name the dataset and the folder.

  With num_shards > 1 this builds only this machine's inputs and returns None; `finalize=True` then (once every
  shard is done) writes the dataset.
  """
  import rsvlm_datasets  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  module = rsvlm_datasets.import_builder(name)
  by_units = _check_parallel_flags(name, module.Builder, workers, num_shards, shard_index, finalize, max_side)
  if manual_dir is not None and not os.path.isdir(manual_dir):
    raise FileNotFoundError(f"--manual_dir does not exist: {manual_dir}")
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  if builder.is_prepared() and not overwrite:
    logging.info("%s already built in %s; reusing it (pass --overwrite to rebuild)", name, builder.data_dir)
    return builder
  _check_writable(data_dir)
  if by_units:
    return _build_by_units(name, data_dir, manual_dir, overwrite, workers=workers, num_shards=num_shards,
                           shard_index=shard_index, finalize=finalize, max_side=max_side)
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


def _build_by_units(name, data_dir, manual_dir, overwrite, *, workers, num_shards, shard_index, finalize,
                    max_side):
  """The parallel, resumable path (rsvlm_datasets/parallel_build.py)."""
  from rsvlm_datasets import parallel_build  # pylint: disable=g-import-not-at-top
  if not finalize:
    if manual_dir is None:
      raise cli.UserError(f"{name} reads its input shards from --manual_dir; pass it")
    done = parallel_build.build_units(name, data_dir, manual_dir, workers=workers, num_shards=num_shards,
                                      shard_index=shard_index, max_side=max_side, overwrite=overwrite)
    rate = done["examples"] / max(done["seconds"], 1e-9)
    print(f"{name}: built {done['built']} input(s) ({done['examples']} examples, {rate:.0f}/s), "
          f"{done['skipped_done']} already done, of {done['units']}", flush=True)
    if num_shards > 1:
      print(f"Shard {shard_index}/{num_shards} done; once every shard is, run the same command with --finalize "
            "(no --shard_index needed)", flush=True)
      return None
  builder = parallel_build.finalize(name, data_dir, overwrite=overwrite)
  parallel_build.print_summary(builder)
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
  try:
    build(argv[1], _DATA_DIR.value, _MANUAL_DIR.value, _OVERWRITE.value, workers=_WORKERS.value,
          num_shards=_NUM_SHARDS.value, shard_index=_SHARD_INDEX.value, finalize=_FINALIZE.value,
          max_side=_MAX_SIDE.value)
  except AssertionError as e:  # TFDS's refusals (e.g. an empty --manual_dir) are assertions.
    raise cli.UserError(str(e)) from e


if __name__ == "__main__":
  cli.run(main, FLAGS, "build_dataset", positional=POSITIONAL)
