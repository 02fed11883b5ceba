"""A tiny trained run (demo config, runlocal, 2 steps) and a folder of awkward images, shared by the tool tests."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from tests.fixtures import tiny_config
from tests.fixtures import tiny_data_dir  # noqa: F401  pylint: disable=unused-import


@pytest.fixture(scope="session")
def tiny_run(tiny_data_dir, tmp_path_factory) -> str:  # noqa: F811
  """Workdir of a 2-step runlocal demo run (SentencePiece tokenizer, caption decoder, 32 px)."""
  from rsvlm_jax import job  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("tiny_run"))
  job.run(tiny_config(tiny_data_dir, "steps=2,ckpt_every=2", num_devices=1), workdir, mode="train")
  return workdir


def write_geotiff(path: str, data: np.ndarray) -> None:
  """A GeoTIFF (pixel-interleaved bands, GeoKeyDirectory + ModelPixelScale + ModelTiepoint tags) of `data`."""
  import tifffile  # pylint: disable=g-import-not-at-top
  geokeys = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633)  # Projected, UTM zone 33N.
  tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig", extratags=[
      (34735, "H", len(geokeys), geokeys, True), (33550, "d", 3, (10.0, 10.0, 0.0), True),
      (33922, "d", 6, (0.0, 0.0, 0.0, 500000.0, 4649776.0, 0.0), True)])


@pytest.fixture()
def awkward_images(tmp_path) -> dict[str, str]:
  """rgb.jpg, gray.png (L), geo16.tif (uint16, 4 bands, GeoTIFF), corrupt.jpg, in tmp_path/images."""
  d = tmp_path / "images"
  d.mkdir()
  rng = np.random.default_rng(0)
  paths = {name: str(d / name) for name in ("rgb.jpg", "gray.png", "geo16.tif", "corrupt.jpg")}
  Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(paths["rgb.jpg"])
  Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8), mode="L").save(paths["gray.png"])
  write_geotiff(paths["geo16.tif"], (rng.random((36, 36, 4)) * 3000 + 200).astype(np.uint16))
  with open(paths["corrupt.jpg"], "wb") as f:
    f.write(b"\xff\xd8\xff\xe0 this is not really a jpeg")
  return paths
