"""Helpers for builder tests that edit a copy of a builder's dummy data and build it."""
import json
import shutil

from etils import epath
import tensorflow_datasets as tfds

import rsvlm_datasets

DATASETS = epath.Path(rsvlm_datasets.__file__).parent


def copy_dummy(name, tmp_path):
  """A writable copy of a builder's dummy data, at tmp_path/m (so ../<name> does not exist)."""
  dst = tmp_path / "m"
  shutil.copytree(DATASETS / name / "dummy_data", dst)
  return epath.Path(dst)


def edit_json(path, fn):
  data = json.loads(path.read_text())
  fn(data)
  path.write_text(json.dumps(data))


def build(name, config, manual_dir, data_dir):
  rsvlm_datasets.import_builder(name)
  builder = tfds.builder(f"{name}/{config}", data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder
