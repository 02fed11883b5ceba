"""build_dataset: --overwrite never loses the old build; an unwritable --data_dir is a one-line error."""
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from rsvlm_datasets import caption_formats
from rsvlm_jax import build_dataset
from tests.fixtures import unwritable_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RSICD_DUMMY = os.path.join(ROOT, "datasets", "rsicd", "dummy_data")


@pytest.fixture
def manual_dir(tmp_path):
  m = str(tmp_path / "m")
  shutil.copytree(RSICD_DUMMY, m)
  return m


def _sizes(data_dir):
  builder = tfds.builder("rsicd", data_dir=data_dir)
  assert builder.is_prepared()
  return {split: len(builder.as_data_source(split)) for split in ("train", "validation", "test")}


def test_failed_overwrite_keeps_the_old_build(manual_dir, tmp_path):
  data_dir = str(tmp_path / "d")
  build_dataset.build("rsicd", data_dir, manual_dir)
  with open(os.path.join(manual_dir, "RSICD_images", "port_2.jpg"), "wb") as f:
    f.write(b"not an image")  # The rebuild (strict) fails on it.
  with pytest.raises(caption_formats.BadRecordError, match="port_2.jpg"):
    build_dataset.build("rsicd", data_dir, manual_dir, overwrite=True)
  assert _sizes(data_dir) == {"train": 4, "validation": 3, "test": 3}
  old = {ex["filename"]: ex for ex in tfds.builder("rsicd", data_dir=data_dir).as_data_source("test")}
  assert old[b"port_2.jpg"]["image"].shape[-1] == 3  # The old example, still readable.
  assert not [x for x in os.listdir(data_dir) if x.startswith(".rebuild")]


def test_overwrite_replaces_the_build(manual_dir, tmp_path):
  data_dir = str(tmp_path / "d")
  build_dataset.build("rsicd", data_dir, manual_dir)
  json_path = os.path.join(manual_dir, "dataset_rsicd.json")
  with open(json_path) as f:
    text = f.read()
  with open(json_path, "w") as f:
    f.write(text.replace('"split": "test"', '"split": "train"', 1))
  build_dataset.build("rsicd", data_dir, manual_dir, overwrite=True)
  assert _sizes(data_dir) == {"train": 5, "validation": 3, "test": 2}
  assert not [x for x in os.listdir(data_dir) if x.startswith(".rebuild")]


@pytest.fixture
def read_only_dir(tmp_path):
  """A directory this process cannot write to (root ignores mode bits: then a path under /sys)."""
  parent = unwritable_dir(tmp_path)
  if parent is None:
    pytest.skip("no unwritable directory available")
  yield os.path.join(parent, "data")
  (tmp_path / "ro").chmod(0o755)


def test_read_only_data_dir_is_a_clear_error(read_only_dir):
  with pytest.raises(PermissionError, match=f"--data_dir {read_only_dir} is not writable"):
    build_dataset.build("rsicd", read_only_dir, RSICD_DUMMY)
  proc = subprocess.run([sys.executable, "-m", "rsvlm_jax.build_dataset", "rsicd",
                         f"--data_dir={read_only_dir}", f"--manual_dir={RSICD_DUMMY}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2  # A user error, as every command's (runtime/cli.py; was 1 before issue 32).
  assert "Traceback" not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1].startswith(
      f"build_dataset: error: --data_dir {read_only_dir} is not writable"), proc.stderr
