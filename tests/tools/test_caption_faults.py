"""tools/caption under faults: a killed run resumes from OUT.partial, bad flags and paths fail before the model
loads, and an old OUT never looks current once a new run has started."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import rsvlm_jax
from rsvlm_jax.data import image_io
from rsvlm_jax.tools import caption as caption_tool
from rsvlm_jax.tools import cli
from tests.fixtures import read_jsonl
from tests.fixtures import unwritable_dir
from tests.fixtures import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def model(tiny_run):
  return rsvlm_jax.load(tiny_run)


def _folder(tmp_path, n: int = 7) -> list[str]:
  d = tmp_path / "images"
  d.mkdir()
  rng = np.random.default_rng(1)
  for i in range(n):
    Image.fromarray(rng.integers(0, 256, (24 + 3 * i, 30, 3), dtype=np.uint8)).save(d / f"im{i}.png")
  (d / "im3.png").write_bytes(b"not a png")  # An error line among the captions.
  return image_io.expand_images(str(d))


class _Counting:
  """Records the images `model.caption` is asked for; raises KeyboardInterrupt once `fail_after` are done."""

  def __init__(self, model, monkeypatch, fail_after: int | None = None):
    self.calls, self.fail_after, self.done = [], fail_after, 0
    caption = model.caption

    def counted(images, **kwargs):
      if self.fail_after is not None and self.done >= self.fail_after:
        raise KeyboardInterrupt  # kill -9 leaves the same files (no cleanup runs either way).
      self.calls.append(len(images))
      self.done += len(images)
      return caption(images, **kwargs)

    monkeypatch.setattr(model, "caption", counted)


def test_a_killed_run_resumes_from_its_finished_lines(model, tmp_path, monkeypatch):
  files = _folder(tmp_path)
  clean = str(tmp_path / "clean.jsonl")
  caption_tool.caption_files(model, files, clean, chunk=2)
  want = open(clean, encoding="utf-8").read()
  assert len(want.splitlines()) == 7 and "error" in want.splitlines()[3]

  # A run killed after 4 finished lines and a torn 5th, over an older OUT from another day.
  out = str(tmp_path / "captions.jsonl")
  lines = want.splitlines(keepends=True)
  with open(out + ".partial", "w", encoding="utf-8") as f:
    f.write("".join(lines[:4]) + lines[4][:20])
  with open(out + ".partial.json", "w") as f:
    json.dump(caption_tool.run_settings(model, files, 0, False), f)
  with open(out, "w") as f:
    f.write('{"image": "old.png", "caption": "stale"}\n')

  counting = _Counting(model, monkeypatch)
  counts = caption_tool.caption_files(model, files, out, chunk=2)
  assert counting.calls == [2, 1]  # Only files 4-6 (chunks of two: 4, 5 and 6).
  assert counts == {"captioned": 6, "failed": 1}
  assert open(out, encoding="utf-8").read() == want
  assert sorted(os.listdir(tmp_path)) == ["captions.jsonl", "clean.jsonl", "images"]


def test_an_interrupted_run_leaves_no_old_output_looking_current(model, tmp_path, monkeypatch):
  files = _folder(tmp_path)
  clean = str(tmp_path / "clean.jsonl")
  caption_tool.caption_files(model, files, clean, chunk=2)
  out = str(tmp_path / "captions.jsonl")
  with open(out, "w") as f:
    f.write('{"image": "old.png", "caption": "stale"}\n')
  _Counting(model, monkeypatch, fail_after=2)
  with pytest.raises(KeyboardInterrupt):
    caption_tool.caption_files(model, files, out, chunk=2)
  assert not os.path.exists(out)  # The old one is kept aside until the new run completes.
  assert open(out + ".previous").read() == '{"image": "old.png", "caption": "stale"}\n'
  assert len(read_jsonl(out + ".partial")) == 2
  monkeypatch.undo()
  counting = _Counting(model, monkeypatch)
  caption_tool.caption_files(model, files, out, chunk=2)
  assert counting.calls == [1, 2, 1]  # 2 (3 is unreadable), 4-5, 6.
  assert open(out, encoding="utf-8").read() == open(clean, encoding="utf-8").read()
  assert not os.path.exists(out + ".previous") and not os.path.exists(out + ".partial")


def test_a_partial_of_other_settings_or_files_is_not_resumed(model, tmp_path, monkeypatch):
  files = _folder(tmp_path)
  out = str(tmp_path / "c.jsonl")
  caption_tool.caption_files(model, files, out, chunk=2)
  want = open(out, encoding="utf-8").read()
  settings = caption_tool.run_settings(model, files, 0, False)
  assert caption_tool.resumable_lines(out, files, settings) == []  # No PARTIAL.json: nothing to resume.
  os.replace(out, out + ".partial")
  with open(out + ".partial.json", "w") as f:
    json.dump({**settings, "beam": 3}, f)
  assert caption_tool.resumable_lines(out + ".partial", files, settings) == []
  with open(out + ".partial.json", "w") as f:
    json.dump(settings, f)
  assert len(caption_tool.resumable_lines(out + ".partial", files, settings)) == 7
  # Another image list: lines are kept up to the first that names another file.
  other = files[:2] + [files[2] + ".new"] + files[2:]
  assert len(caption_tool.resumable_lines(out + ".partial", other, settings)) == 2
  counting = _Counting(model, monkeypatch)
  caption_tool.caption_files(model, files, out, chunk=2, resume=False)
  assert sum(counting.calls) == 6 and open(out, encoding="utf-8").read() == want


def test_flags_and_paths_are_checked_before_the_model_loads(tiny_run, tmp_path):
  """prepare() reads only config.json: a model directory without checkpoints shows no check loads weights."""
  only_config = tmp_path / "model"
  only_config.mkdir()
  shutil.copy(os.path.join(tiny_run, "config.json"), only_config)
  folder = os.path.dirname(_folder(tmp_path)[0])
  out = str(tmp_path / "o.jsonl")
  ok = dict(model=str(only_config), images=folder, out=out)
  files, options = caption_tool.prepare(**ok, max_side=32, max_pixels=10, bands="3,2,1")
  assert len(files) == 7 and options == image_io.ReadOptions(bands=(3, 2, 1), max_pixels=10, max_side=32)
  (tmp_path / "outdir").mkdir()
  bad = [(dict(max_side=0), "--max_side=0: below the model's smallest input size (32 px)"),
         (dict(max_side=31), "--max_side=31: below"),
         (dict(max_side=-5), "--max_side=-5"),
         (dict(max_pixels=0), "--max_pixels=0: expected a positive pixel count"),
         (dict(batch=0), "--batch=0"), (dict(beam=-1), "--beam=-1"),
         (dict(out=str(tmp_path / "outdir")), "is a directory; give a file name"),
         (dict(sheet=str(tmp_path / "missing" / "s.png")), f"folder {tmp_path / 'missing'} does not exist"),
         (dict(sheet=out), "is the --out file")]
  unwritable = unwritable_dir(tmp_path)
  if unwritable:
    bad.append((dict(out=os.path.join(unwritable, "o.jsonl")), f"cannot write in {unwritable}"))
  for change, message in bad:
    with pytest.raises(cli.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
      caption_tool.prepare(**{**ok, **change})
  with open(only_config / "config.json") as f:
    config = json.load(f)
  config["model"]["decoder"] = None
  with open(only_config / "config.json", "w") as f:
    json.dump(config, f)
  with pytest.raises(cli.UserError, match="has no caption decoder"):
    caption_tool.prepare(**ok)
  assert not os.path.exists(out)


def test_cli_refuses_a_bad_config_json_and_logs_no_library_internals(tiny_run, tmp_path):
  folder = os.path.dirname(_folder(tmp_path, 2)[0])
  bad = tmp_path / "bad"
  shutil.copytree(tiny_run, bad)
  (bad / "config.json").write_text('{"model": {"image": {}, "text": {}}, "dris": {"resolutions": "32"}}')
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
  run = lambda m, out: subprocess.run(
      [sys.executable, "-m", "rsvlm_jax.tools.caption", "--model", m, "--images", folder, "--out", out],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
  refused = run(str(bad), str(tmp_path / "x.jsonl"))
  assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
  assert refused.stderr.strip().splitlines()[-1] == (
      f"caption: error: {bad / 'config.json'}: config key 'dris.resolutions' should be a list of numbers, got a "
      'string ("32")')
  good = run(tiny_run, str(tmp_path / "y.jsonl"))
  assert good.returncode == 0, good.stderr[-3000:]
  noise = [line for line in good.stderr.splitlines() if "orbax" in line or "checkpoint" in line.lower()]
  assert not noise, noise
  assert "Captioned 2 of 3 images" in good.stderr and len(good.stderr.splitlines()) <= 5, good.stderr
