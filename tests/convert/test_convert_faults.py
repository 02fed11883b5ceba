"""The converter under faults and bad input: nothing replaced that it did not write, no partial output left
behind, one clear error naming the file or key (issue 33, items 2, 10, 11, 13)."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("open_clip")

from rsvlm_jax.convert import open_clip_weights  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.convert import output_dir  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.tools import cli  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.tools import convert_open_clip  # noqa: E402  pylint: disable=wrong-import-position
from tests import fixtures  # noqa: E402  pylint: disable=wrong-import-position
from tests.convert import open_clip_models as ocm  # noqa: E402  pylint: disable=wrong-import-position

ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
  """A tiny open_clip model saved as a plain state dict, and its architecture file."""
  d = tmp_path_factory.mktemp("ckpt")
  return ocm.save_state_dict(ocm.random_clip(), str(d / "m.pt")), ocm.write_arch(d)


def _tree(path) -> dict[str, bytes]:
  """{relative path: content} of every file under `path`."""
  out = {}
  for root, _, files in os.walk(path):
    for name in files:
      with open(os.path.join(root, name), "rb") as f:
        out[os.path.relpath(os.path.join(root, name), path)] = f.read()
  return out


def _dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def test_overwrite_replaces_only_a_converted_model(tmp_path, ckpt):
  """--overwrite refuses a folder holding anything else (named, with what it holds), touching nothing."""
  m, arch = ckpt
  other = tmp_path / "other_model"
  (other / "checkpoints" / "0").mkdir(parents=True)
  (other / "notes.txt").write_text("my notes")
  (other / "config.json").write_text(json.dumps({"model": {}}))  # A trained workdir's config, no conversion.json.
  before = _tree(other)
  with pytest.raises(cli.UserError, match=rf"--out {other} is not a model written by convert_open_clip .*it holds "
                                          r"checkpoints, config.json, notes.txt.*even with --overwrite"):
    convert_open_clip.convert(m, str(other), model_config=arch, overwrite=True)
  assert _tree(other) == before and sorted(os.listdir(tmp_path)) == ["other_model"]
  # Its own output is replaced, leaving no .old / .partial sibling.
  out = convert_open_clip.convert(m, str(tmp_path / "out"), model_config=arch)
  first = json.loads((tmp_path / "out" / "conversion.json").read_text())
  assert output_dir.is_converted_model(out) and not output_dir.is_converted_model(str(other))
  convert_open_clip.convert(m, out, model_config=arch, overwrite=True)
  assert json.loads((tmp_path / "out" / "conversion.json").read_text())["sha256"] == first["sha256"]
  assert sorted(os.listdir(tmp_path)) == ["other_model", "out"]
  assert output_dir.OWNER_JSON not in os.listdir(out)


def test_out_file_and_unwritable_out_are_refused_before_reading(tmp_path, ckpt, monkeypatch):
  m, arch = ckpt
  monkeypatch.setattr(open_clip_weights, "read_state_dict", lambda *a: pytest.fail("checkpoint read"))
  afile = tmp_path / "model.bin"
  afile.write_text("keep me")
  with pytest.raises(cli.UserError, match=rf"--out {afile} is an existing file.*even with --overwrite"):
    convert_open_clip.convert(m, str(afile), model_config=arch, overwrite=True)
  assert afile.read_text() == "keep me" and sorted(os.listdir(tmp_path)) == ["model.bin"]  # No model.bin.old-PID.
  with pytest.raises(cli.UserError, match=r"model.bin/sub/out: .*model.bin is a file, not a folder"):
    convert_open_clip.convert(m, str(afile / "sub" / "out"), model_config=arch)
  ro = fixtures.unwritable_dir(tmp_path)
  if ro is None:
    pytest.skip("no unwritable folder available")
  with pytest.raises(cli.UserError, match=r"--out .*/new/out: cannot write in "):
    convert_open_clip.convert(m, os.path.join(ro, "new", "out"), model_config=arch)


def test_missing_logit_scale_names_the_key_and_the_file(tmp_path):
  import torch  # pylint: disable=g-import-not-at-top
  sd = ocm.random_clip().state_dict()
  del sd["logit_scale"]
  path = str(tmp_path / "no_scale.pt")
  torch.save(sd, path)
  with pytest.raises(ValueError, match=rf"{path} does not match the architecture: 1 missing key\(s\): "
                                       r"logit_scale$"):
    convert_open_clip.convert(path, str(tmp_path / "out"), model_config=ocm.write_arch(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ["arch.json", "no_scale.pt"]


@pytest.mark.parametrize("content,match", [
    ([1, 2], r"expected open_clip's JSON object .* got a JSON list"),
    ({"embed_dim": 32, "text_cfg": ocm.TINY_ARCH["text_cfg"]}, r"no key 'vision_cfg'"),
    ({**ocm.TINY_ARCH, "vision_cfg": [12, 768]}, r"vision_cfg is a JSON list, expected an object"),
    ({**ocm.TINY_ARCH, "vision_cfg": {**ocm.TINY_ARCH["vision_cfg"], "width": "wide"}},
     r"open_clip config vision_cfg.width='wide' is not an integer"),
], ids=["list", "no_vision_cfg", "vision_cfg_list", "width_string"])
def test_bad_model_config_names_file_and_key(tmp_path, ckpt, content, match):
  path = tmp_path / "arch.json"
  path.write_text(json.dumps(content))
  with pytest.raises(ValueError, match=rf"--model_config {path}: {match}"):
    convert_open_clip.convert(ckpt[0], str(tmp_path / "out"), model_config=str(path))


def test_safetensors_is_recognised_by_its_header(tmp_path):
  """A .safetensors renamed (no extension, or .bin) is read as safetensors; torch files and junk are not."""
  model = ocm.random_clip()
  want = open_clip_weights.read_state_dict(ocm.save_state_dict(model, str(tmp_path / "m.pt")))
  for name in ("weights", "weights.bin"):
    path = ocm.save_state_dict(model, str(tmp_path / name), "safetensors")
    assert open_clip_weights.is_safetensors(path)
    got = open_clip_weights.read_state_dict(path)
    assert sorted(got) == sorted(want) and all(np.array_equal(got[k], want[k]) for k in want)
  (tmp_path / "junk").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{ truncated")
  assert not open_clip_weights.is_safetensors(str(tmp_path / "m.pt"))
  assert not open_clip_weights.is_safetensors(str(tmp_path / "junk"))  # Header longer than the file.


def test_stale_partials_of_dead_conversions_are_removed(tmp_path, ckpt, caplog):
  """Dead pid on this host: removed and logged; a live pid, or another host's: kept. A model moved aside by a
  conversion killed mid-replace is put back first."""
  m, arch = ckpt
  out = tmp_path / "out"
  dead = _dead_pid()
  stale = tmp_path / f"out.partial-{dead}"
  (stale / "checkpoints").mkdir(parents=True)
  (stale / "checkpoints" / "big").write_bytes(b"\0" * (1 << 20))
  live = tmp_path / f"out.partial-{os.getppid()}"
  live.mkdir()
  remote = tmp_path / f"out.partial-{dead + 1}"
  remote.mkdir()
  (remote / output_dir.OWNER_JSON).write_text(json.dumps({"host": "another-host", "pid": dead + 1}))
  other = tmp_path / f"other.partial-{dead}"  # Another OUT's: not ours to judge.
  other.mkdir()
  with caplog.at_level(logging.INFO):
    convert_open_clip.convert(m, str(out), model_config=arch)
  assert not stale.exists() and live.is_dir() and remote.is_dir() and other.is_dir()
  assert output_dir.is_converted_model(str(out))
  assert any(f"Removed {stale} (1.0 MB) left by a killed conversion (pid {dead})" in r.getMessage()
             for r in caplog.records)
  # Killed between moving the old model aside and moving the new one in: the next run puts it back.
  moved = tmp_path / f"out.old-{dead}"
  os.rename(out, moved)
  (moved / output_dir.OWNER_JSON).write_text(json.dumps({"host": None, "pid": dead}))
  with pytest.raises(FileExistsError, match="already exists; pass --overwrite"):
    convert_open_clip.convert(m, str(out), model_config=arch)
  assert not moved.exists() and output_dir.is_converted_model(str(out))
  assert output_dir.OWNER_JSON not in os.listdir(out)


_STALL_BEFORE_PUBLISH = """
import sys, time
from rsvlm_jax.convert import output_dir
from rsvlm_jax.tools import convert_open_clip
def stall(*args):
  print("written", flush=True)
  time.sleep(600)
output_dir.publish = stall
convert_open_clip.convert(sys.argv[1], sys.argv[2], model_config=sys.argv[3])
"""


def test_kill_9_leaves_no_out_and_the_next_run_cleans_up(tmp_path, ckpt):
  """A real conversion killed with SIGKILL once its output is written (just before the rename)."""
  m, arch = ckpt
  out = tmp_path / "out"
  proc = subprocess.Popen([sys.executable, "-c", _STALL_BEFORE_PUBLISH, m, str(out), arch],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
  try:
    assert proc.stdout.readline().strip() == "written"
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  partial = tmp_path / f"out.partial-{proc.pid}"
  assert not out.exists() and sorted(os.listdir(partial)) == [
      output_dir.OWNER_JSON, "checkpoints", "config.json", "conversion.json", "tokenizer_bpe.txt.gz"]
  convert_open_clip.convert(m, str(out), model_config=arch)
  assert sorted(os.listdir(tmp_path)) == ["out"] and output_dir.is_converted_model(str(out))


def test_cli_refuses_in_one_line(tmp_path, ckpt):
  m, arch = ckpt
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("x")
  cmd = [sys.executable, "-m", "rsvlm_jax.tools.convert_open_clip", "--model_config", arch, "--checkpoint", m]
  run = subprocess.run(cmd + ["--out", str(other), "--overwrite"], capture_output=True, text=True, env=ENV,
                       check=False)
  assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
  assert run.stderr.strip().splitlines()[-1] == (
      f"convert_open_clip: error: --out {other} is not a model written by convert_open_clip (no conversion.json "
      "and config.json of a conversion; it holds notes.txt); refusing to replace it even with --overwrite: pick "
      "another --out or remove it yourself")
  assert os.listdir(other) == ["notes.txt"]
  # A successful run's output without orbax's internals: test_open_clip.test_cli_writes_a_directory_and_fails_clearly.
