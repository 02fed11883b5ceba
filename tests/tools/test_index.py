"""python -m rsvlm_jax.tools.index build / add / query on a tiny converted open_clip model and a folder with a
corrupt file, a grayscale PNG, a 16-bit GeoTIFF and JPEGs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("open_clip")

from rsvlm_jax.retrieval_index import contact_sheet  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.retrieval_index import embed  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.runtime import cli  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.tools import index as index_tool  # noqa: E402  pylint: disable=wrong-import-position


def index_main(args) -> int:
  """`python -m rsvlm_jax.tools.index ARGS` in-process (runtime/cli.call): its exit status."""
  return cli.call(index_tool.main, index_tool.FLAGS, "index", args, commands=index_tool.COMMANDS)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
  """A converted random open_clip model (32 px, embed 32)."""
  from rsvlm_jax.tools import convert_open_clip  # pylint: disable=g-import-not-at-top
  from tests.convert import open_clip_models as ocm  # pylint: disable=g-import-not-at-top
  d = tmp_path_factory.mktemp("clip")
  ckpt = ocm.save_state_dict(ocm.random_clip(), str(d / "m.safetensors"), "safetensors")
  return convert_open_clip.convert(ckpt, str(d / "model"), model_config=ocm.write_arch(d))


def _jpegs(folder, names, seed):
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(seed)
  for name in names:
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(os.path.join(folder, name))


def _manifest(index):
  with open(os.path.join(index, "manifest.jsonl")) as f:
    return [json.loads(line) for line in f]


def _meta(index):
  with open(os.path.join(index, "index.json")) as f:
    return json.load(f)


def test_build_then_query_by_an_indexed_image_and_by_text(tiny_clip, awkward_images, tmp_path, capsys):
  folder = os.path.dirname(awkward_images["rgb.jpg"])
  _jpegs(os.path.join(folder, "sub"), ["a.jpg", "b.jpg"], seed=1)
  index = str(tmp_path / "INDEX")
  assert index_main(["build", "--model", tiny_clip, "--images", folder, "--out", index, "--batch_size", "2",
                     "--shard_rows", "4", "--log_every", "0"]) == 0
  out, err = capsys.readouterr()
  assert "1 skipped (unreadable)" in out and "5 in the index" in out
  assert "corrupt.jpg" in err  # Named in the log.
  assert "2/6 images done (1 skipped)" in err and "ETA" in err  # Progress lines (every batch here).
  rows = _manifest(index)
  want = sorted(os.path.join(folder, n) for n in ("geo16.tif", "gray.png", "rgb.jpg", "sub/a.jpg", "sub/b.jpg"))
  assert [r["path"] for r in rows] == want
  for r in rows:
    assert r["size"] == os.path.getsize(r["path"]) and r["mtime"] == os.path.getmtime(r["path"])
  meta = _meta(index)
  assert meta["count"] == 5 and meta["embed_dim"] == 32 and meta["model"] == os.path.abspath(tiny_clip)
  assert meta["created"] and meta["resolution"] == 32
  [skipped] = meta["skipped"]
  assert skipped["path"] == awkward_images["corrupt.jpg"] and "corrupt.jpg" in skipped["reason"]
  assert [s["rows"] for s in meta["shards"]] == [4, 1]  # A shard committed every --shard_rows images.
  emb = np.concatenate([np.load(os.path.join(index, s["file"])) for s in meta["shards"]])
  assert emb.shape == (5, 32) and emb.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

  results, grid = str(tmp_path / "results.json"), str(tmp_path / "results.png")
  assert index_main(["query", "--index", index, "--image", awkward_images["gray.png"], "--k", "3",
                     "--out", results, "--grid", grid]) == 0
  with open(results) as f:
    res = json.load(f)
  assert res["query"] == {"image": awkward_images["gray.png"]} and res["k"] == 3
  assert [h["rank"] for h in res["results"]] == [1, 2, 3]
  assert res["results"][0]["path"] == awkward_images["gray.png"]
  assert res["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
  assert res["results"][0]["score"] >= res["results"][1]["score"] >= res["results"][2]["score"]
  with Image.open(grid) as sheet:
    assert sheet.size == contact_sheet.sheet_size(3) == (480, contact_sheet.HEADER + 160 + contact_sheet.LABEL)

  assert index_main(["query", "--index", index, "--text", "a harbor with ships", "--k", "10",
                     "--out", results]) == 0
  with open(results) as f:
    res = json.load(f)
  assert res["query"] == {"text": "a harbor with ships"} and res["k"] == 10
  assert sorted(h["path"] for h in res["results"]) == want  # k above the count: every image once.


def test_add_embeds_only_new_files_and_refuses_another_model(tiny_clip, tmp_path, monkeypatch, capsys):
  folder = str(tmp_path / "images")
  _jpegs(folder, ["1.jpg", "2.jpg"], seed=2)
  index = str(tmp_path / "INDEX")
  assert index_main(["build", "--model", tiny_clip, "--images", folder, "--out", index]) == 0
  first_shard = np.load(os.path.join(index, "embeddings_00000.npy"))
  _jpegs(folder, ["3.jpg"], seed=3)
  with open(os.path.join(folder, "4.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n truncated")
  read = []
  real_read = embed._read  # pylint: disable=protected-access
  monkeypatch.setattr(embed, "_read", lambda model, path: read.append(path) or real_read(model, path))
  capsys.readouterr()
  assert index_main(["add", "--index", index, "--images", os.path.join(folder, "*")]) == 0
  out, _ = capsys.readouterr()
  assert sorted(os.path.basename(p) for p in read) == ["3.jpg", "4.png"]
  assert "Indexed 1 new image(s)" in out and "1 skipped" in out and "2 already indexed" in out
  meta = _meta(index)
  assert meta["count"] == 3 and [s["rows"] for s in meta["shards"]] == [2, 1]
  assert [os.path.basename(s["path"]) for s in meta["skipped"]] == ["4.png"]
  np.testing.assert_array_equal(np.load(os.path.join(index, "embeddings_00000.npy")), first_shard)
  assert [os.path.basename(r["path"]) for r in _manifest(index)] == ["1.jpg", "2.jpg", "3.jpg"]
  # Nothing new: nothing read, exit 0.
  read.clear()
  assert index_main(["add", "--index", index, "--images", os.path.join(folder, "*.jpg")]) == 0
  assert not read

  other = str(tmp_path / "other")
  shutil.copytree(tiny_clip, other)
  assert index_main(["add", "--index", index, "--images", folder, "--model", other]) == 2
  assert "built with" in capsys.readouterr().err
  # The same directory with another config (e.g. retrained in place) is refused too.
  index2 = str(tmp_path / "INDEX2")
  assert index_main(["build", "--model", other, "--images", folder, "--out", index2]) == 0
  with open(os.path.join(other, "config.json"), "a") as f:
    f.write("\n")
  assert index_main(["add", "--index", index2, "--images", folder]) == 2
  assert "has changed since" in capsys.readouterr().err


def test_cli_exit_status_and_errors(tiny_clip, tmp_path):
  folder = str(tmp_path / "images")
  os.makedirs(folder)
  with open(os.path.join(folder, "bad.jpg"), "wb") as f:
    f.write(b"not an image")
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  run = lambda *a: subprocess.run([sys.executable, "-m", "rsvlm_jax.tools.index", *a], capture_output=True,
                                  text=True, env=env, check=False)
  index = str(tmp_path / "INDEX")
  only_bad = run("build", "--model", tiny_clip, "--images", folder, "--out", index)
  assert only_bad.returncode == 1, only_bad.stderr[-2000:]
  assert "No image could be embedded" in only_bad.stderr and "bad.jpg" in only_bad.stderr
  assert not os.path.exists(index)
  _jpegs(folder, ["ok.jpg"], seed=4)
  ok = run("build", "--model", tiny_clip, "--images", folder, "--out", index)
  assert ok.returncode == 0 and "Indexed 1 new image(s)" in ok.stdout and "1 skipped" in ok.stdout
  again = run("build", "--model", tiny_clip, "--images", folder, "--out", index)
  assert again.returncode == 2 and "exists and is not empty" in again.stderr
  nothing = index_main(["build", "--model", tiny_clip, "--images", str(tmp_path / "*.nope"), "--out",
                        str(tmp_path / "I3")])
  assert nothing == 2


def test_query_with_faiss_matches_the_exact_search(tiny_clip, tmp_path):
  pytest.importorskip("faiss")
  folder = str(tmp_path / "images")
  _jpegs(folder, [f"{i}.jpg" for i in range(6)], seed=5)
  index = str(tmp_path / "INDEX")
  assert index_main(["build", "--model", tiny_clip, "--images", folder, "--out", index]) == 0
  ours = index_tool.query(index, text="farmland", k=4)
  theirs = index_tool.query(index, text="farmland", k=4, use_faiss=True)
  assert [h["path"] for h in ours["results"]] == [h["path"] for h in theirs["results"]]
  np.testing.assert_allclose([h["score"] for h in ours["results"]], [h["score"] for h in theirs["results"]],
                             atol=1e-5)


def test_query_with_faiss_missing_is_a_clear_error(tiny_clip, tmp_path, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "faiss", None)
  folder = str(tmp_path / "images")
  _jpegs(folder, ["a.jpg"], seed=6)
  index = str(tmp_path / "INDEX")
  assert index_main(["build", "--model", tiny_clip, "--images", folder, "--out", index]) == 0
  assert index_main(["query", "--index", index, "--text", "x", "--faiss", "--out", str(tmp_path / "r.json")]) == 2
  assert "pip install faiss-cpu==1.15.1" in capsys.readouterr().err
