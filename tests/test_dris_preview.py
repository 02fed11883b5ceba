"""The DRIS preview picture: panels, overlay colours, labels."""
import numpy as np

from rsvlm_jax.tools import dris_preview
from tests.fixtures import xla_flags


def test_overlay_colours_follow_the_map():
  img = np.full((64, 64, 3), 128, np.uint8)
  cmap = np.zeros((8, 8), np.float32)
  cmap[:, 4:] = 1.0  # right half complex.
  out = np.asarray(dris_preview.overlay(img, cmap, 64), np.float32)
  left, right = out[:, :16].mean((0, 1)), out[:, -16:].mean((0, 1))
  assert right[0] > left[0] + 50 and left[2] > right[2] + 50  # red where complex, blue where flat.


def test_render_grid_size():
  imgs = [np.zeros((40, 50, 3), np.uint8)] * 5
  cmaps = [np.zeros((8, 8), np.float32)] * 5
  pic = dris_preview.render(imgs, cmaps, ["x"] * 5, size=32, cols=4)
  assert pic.size == (4 * 32, 2 * (32 + 16))


def test_command_writes_png_with_one_panel_per_image(tiny_data_dir, tmp_path):
  """The command as a user runs it: the run's DRIS thresholds, N panels, a readable PNG."""
  import os
  import subprocess
  import sys
  from PIL import Image
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = tmp_path / "preview.png"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
  proc = subprocess.run(
      [sys.executable, "-m", "rsvlm_jax.tools.dris_preview",
       f"--config=configs/demo.py:runlocal=True,dris=True,data_dir={tiny_data_dir}",
       f"--workdir={tmp_path / 'run'}", f"--out={out}", "--num=6", "--tile=32", "--cols=3"],
      cwd=root, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  pic = Image.open(out)
  assert pic.size == (3 * 32, 2 * (32 + 16))
  assert os.path.exists(tmp_path / "run" / "dris")  # thresholds calibrated and cached like a training run.
