"""A run's data artefacts in its workdir: which dataset it was made from, and its tokenizer.

dataset.json     the dataset name and split sizes; a workdir never silently switches datasets (its tokenizer
                 and DRIS caches were made from the first one).
tokenizer.model  trained once by process 0 on the training captions (unless config.input.tokenizer_path, or
                 the CLIP BPE merges adopted from converted open_clip weights, are there).
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
from typing import Callable, Iterable

import jax

from rsvlm_jax.data import tokenizer as tokenizer_lib
from rsvlm_jax.runtime import process_zero

DATASET_FILE = "dataset.json"
# What an input pipeline reads from a workdir (and may write there on first use).
PIPELINE_FILES = (tokenizer_lib.SENTENCEPIECE_FILE, tokenizer_lib.CLIP_BPE_FILE, DATASET_FILE, "dris")


def scratch_copy(workdir: str) -> str:
  """A writable scratch directory holding copies of the workdir's pipeline files (removed at exit): a pipeline
  over a run that must not be written (evaluating it read-only, using it as a teacher) works there."""
  scratch = tempfile.mkdtemp(prefix="rsvlm-readonly-")
  atexit.register(shutil.rmtree, scratch, True)
  for name in PIPELINE_FILES:
    src = os.path.join(workdir, name)
    for root, _, files in os.walk(src) if os.path.isdir(src) else [(workdir, None, [name])]:
      dst = os.path.join(scratch, os.path.relpath(root, workdir))
      os.makedirs(dst, exist_ok=True)
      for f in files:
        if os.path.isfile(os.path.join(root, f)):
          shutil.copyfile(os.path.join(root, f), os.path.join(dst, f))  # Contents only: writable copies.
  return scratch


@contextlib.contextmanager
def naming_run_dir(scratch: str | None, run_dir: str):
  """ValueErrors raised inside name the run's files (under `run_dir`), not their copies under `scratch`."""
  try:
    yield
  except ValueError as e:
    if scratch and scratch in str(e):
      raise ValueError(str(e).replace(scratch, run_dir)) from e
    raise


def check_dataset(workdir: str, dataset: str, data_dir: str, split_sizes: dict[str, int]) -> None:
  """Records the dataset in WORKDIR/dataset.json; a workdir made from another dataset fails."""
  record = {"dataset": dataset, "splits": dict(sorted(split_sizes.items()))}
  path = os.path.join(workdir, DATASET_FILE)
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved != record:
      raise ValueError(f"{path}: this workdir's tokenizer and DRIS caches were made from dataset "
                       f"{saved.get('dataset')!r} (splits {saved.get('splits')}), but config key input.dataset "
                       f"gives {record['dataset']!r} (splits {record['splits']}) under {data_dir}; "
                       "use a new workdir for another dataset")
  elif jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(path + ".tmp", "w") as f:
      json.dump(record, f, indent=2)
    os.replace(path + ".tmp", path)


def run_tokenizer(workdir: str, tokenizer_path: str, vocab_size: int,
                  captions: Callable[[], Iterable[str]]):
  """config.input.tokenizer_path, else the workdir's CLIP BPE merges, else its tokenizer.model (trained now
  on `captions()` by process 0 when missing)."""
  if tokenizer_path:
    return tokenizer_lib.from_file(tokenizer_path)
  clip_bpe = os.path.join(workdir, tokenizer_lib.CLIP_BPE_FILE)
  if os.path.isfile(clip_bpe):  # Adopted from converted open_clip weights (config.model_init).
    return tokenizer_lib.from_file(clip_bpe)
  path = os.path.join(workdir, tokenizer_lib.SENTENCEPIECE_FILE)
  return process_zero.compute_once(lambda: tokenizer_lib.load_or_train(path, captions, vocab_size),
                                   lambda: tokenizer_lib.load(path), "tokenizer")
