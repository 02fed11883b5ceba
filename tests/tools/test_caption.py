"""python -m rsvlm_jax.tools.caption on a folder with a corrupt file, a grayscale PNG and a 16-bit 4-band GeoTIFF."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import rsvlm_jax
from rsvlm_jax.data import image_io
from rsvlm_jax.tools import caption as caption_tool


def _run(args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, "-m", "rsvlm_jax.tools.caption", *args], capture_output=True, text=True,
                        env=env, check=False)


def test_caption_a_folder(tiny_run, awkward_images, tmp_path):
  folder = os.path.dirname(awkward_images["rgb.jpg"])
  out = str(tmp_path / "captions.jsonl")
  sheet = str(tmp_path / "sheet.png")
  run = _run(["--model", tiny_run, "--images", folder, "--out", out, "--bands", "", "--sheet", sheet])
  assert run.returncode == 0, run.stderr[-3000:]
  with open(out) as f:
    rows = [json.loads(line) for line in f]
  assert [os.path.basename(r["image"]) for r in rows] == ["corrupt.jpg", "geo16.tif", "gray.png", "rgb.jpg"]
  assert "error" in rows[0] and "corrupt.jpg" in rows[0]["error"] and "caption" not in rows[0]
  assert all(isinstance(r["caption"], str) and "error" not in r for r in rows[1:])
  assert "Captioned 3 of 4 images" in run.stderr and "1 could not be read" in run.stderr
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(sheet) as im:
    assert im.size == (4 * 200, 192 + 6 + 60)  # Three thumbnails with captions in one row of four.
  # The same captions as the Python API on the same files (the GeoTIFF through the documented stretch).
  model = rsvlm_jax.load(tiny_run)
  assert [r["caption"] for r in rows[1:]] == model.caption([r["image"] for r in rows[1:]])
  geo = image_io.read_image(awkward_images["geo16.tif"])
  assert geo.shape == (36, 36, 3) and geo.dtype == np.uint8 and geo.min() == 0 and geo.max() == 255


def test_caption_tool_errors(tiny_run, awkward_images, tmp_path):
  only_bad = _run(["--model", tiny_run, "--images", awkward_images["corrupt.jpg"], "--out", str(tmp_path / "o.jsonl")])
  assert only_bad.returncode == 1 and "none of the 1 images could be captioned" in only_bad.stderr
  nothing = _run(["--model", tiny_run, "--images", str(tmp_path / "*.nothing"), "--out", str(tmp_path / "o.jsonl")])
  assert nothing.returncode == 2 and "No image files match" in nothing.stderr
  bad_bands = _run(["--model", tiny_run, "--images", awkward_images["geo16.tif"], "--out", str(tmp_path / "o.jsonl"),
                    "--bands", "9,3,2"])
  assert bad_bands.returncode == 1 and "asks for band 9 of an image with 4" in bad_bands.stderr


def test_caption_files_in_process(tiny_run, awkward_images, tmp_path):
  """--dris on a one-bucket run, beam search: the function behind the CLI."""
  model = rsvlm_jax.load(tiny_run)
  files = image_io.expand_images(os.path.dirname(awkward_images["rgb.jpg"]))
  counts = caption_tool.caption_files(model, files, str(tmp_path / "c.jsonl"), beam=2, dris=True, chunk=2)
  assert counts == {"captioned": 3, "failed": 1}
