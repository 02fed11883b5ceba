"""Opening TFDS data sources (array_record, no TensorFlow) with errors that name the path."""
from __future__ import annotations

import os

import numpy as np


def open_source(dataset: str, split: str, data_dir: str, *, images: bool = True):
  """Returns `tfds.data_source(dataset, split, data_dir)` and the dataset's info; clear errors for missing
  dirs/datasets. `images=False`: the "image" feature comes as its encoded bytes (not decoded), for readers
  of captions and for decoding it another way (data/draft_decode.py)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = built_builder(dataset, data_dir)
  if split.split("[")[0] not in builder.info.splits:
    raise ValueError(f"Dataset {dataset!r} has no split {split!r}; splits: {sorted(builder.info.splits)}")
  decoders = None if images or "image" not in builder.info.features else {"image": tfds.decode.SkipDecoding()}
  return builder.as_data_source(split=split, decoders=decoders), builder.info


def built_builder(dataset: str, data_dir: str):
  """The TFDS builder of `dataset` under `data_dir`, which must be built (errors name the build command)."""
  import rsvlm_datasets  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = os.path.expanduser(data_dir)
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(
        f"Data directory not found: {data_dir} (config key input.data_dir). Build the dataset first: "
        f"python -m rsvlm_jax.build_dataset {dataset} --data_dir={data_dir}")
  rsvlm_datasets.import_builder(dataset)
  builder = tfds.builder(dataset, data_dir=data_dir)
  if not os.path.isdir(builder.data_dir) or not builder.info.splits:
    raise FileNotFoundError(
        f"Dataset {dataset!r} is not built under {data_dir} (looked in {builder.data_dir}). Run: "
        f"python -m rsvlm_jax.build_dataset {dataset} --data_dir={data_dir}")
  return builder


def as_text(value) -> str:
  """bytes/np.bytes_/str -> str."""
  if isinstance(value, (bytes, np.bytes_)):
    return value.decode("utf-8")
  return str(value)


def as_text_list(value) -> list[str]:
  return [as_text(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
