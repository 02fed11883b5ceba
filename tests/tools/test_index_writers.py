"""tools.index under faults and friction (issue 33): one writer at a time, moved and deleted files, bad flags,
several queries per call with one model load."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("open_clip")

from rsvlm_jax.retrieval_index import embed  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.retrieval_index import lock as lock_lib  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.retrieval_index import store as store_lib  # noqa: E402  pylint: disable=wrong-import-position
from rsvlm_jax.tools import index as index_tool  # noqa: E402  pylint: disable=wrong-import-position
from tests.tools.test_index import _jpegs  # noqa: E402  pylint: disable=wrong-import-position
from tests.tools.test_index import index_main  # noqa: E402  pylint: disable=wrong-import-position
from tests.tools.test_index import tiny_clip  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}


def _tool(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", "rsvlm_jax.tools.index", *args], capture_output=True, text=True,
                        env=ENV, check=False, timeout=timeout)


def _by_path(index):
  store = store_lib.IndexStore.open(index)
  return dict(zip(store.paths(), store.embeddings()))


def _assert_consistent(index, reference):
  """Manifest rows == embedding rows == count, no path twice, each row holding its own image's embedding."""
  store = store_lib.IndexStore.open(index)  # Refuses a damaged index.
  with open(store.manifest_path) as f:
    lines = f.read().splitlines()
  emb = store.embeddings()
  assert len(lines) == len(emb) == store.count == len(set(store.paths()))
  for path, row in zip(store.paths(), emb):
    np.testing.assert_allclose(row, reference[path], atol=1e-5, err_msg=path)
  return store


@pytest.fixture()
def built(tiny_clip, tmp_path):  # noqa: F811
  """An index of images/ (3 JPEGs) and the embeddings of images/ and more/ (6 JPEGs), by real path."""
  folder, more = str(tmp_path / "images"), str(tmp_path / "more")
  _jpegs(folder, ["a.jpg", "b.jpg", "c.jpg"], seed=1)
  _jpegs(more, [f"{i}.jpg" for i in range(6)], seed=2)
  ref = str(tmp_path / "REF")
  index_tool.build(tiny_clip, [folder, more], ref, log_every=0)
  index = str(tmp_path / "INDEX")
  index_tool.build(tiny_clip, [folder], index, log_every=0)
  return {"index": index, "folder": folder, "more": more, "reference": _by_path(ref)}


def test_a_second_writer_is_refused_naming_the_index_and_its_holder(built, capsys):
  index = built["index"]
  holder = subprocess.Popen([sys.executable, "-c", (
      "import sys; from rsvlm_jax.retrieval_index import lock; l = lock.IndexLock(sys.argv[1]).acquire(); "
      "print('held', flush=True); sys.stdin.read(); l.release()"), index], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=ENV)
  try:
    assert holder.stdout.readline().strip() == "held"
    capsys.readouterr()
    assert index_main(["add", "--index", index, "--images", built["more"]]) == 2
    err = capsys.readouterr().err
    assert f"index add: error: {index} is being written by pid {holder.pid} on host" in err
    assert index_main(["prune", "--index", index]) == 2
    assert index_main(["build", "--model", store_lib.IndexStore.open(index).identity["model"], "--images",
                       built["more"], "--out", index, "--overwrite"]) == 2
    assert f"pid {holder.pid}" in capsys.readouterr().err
  finally:
    holder.communicate("", timeout=60)
  assert _assert_consistent(index, built["reference"]).count == 3  # Untouched by the refused writers.
  assert index_main(["add", "--index", index, "--images", built["more"]]) == 0  # Free again.
  assert _assert_consistent(index, built["reference"]).count == 9
  assert not os.path.exists(os.path.join(index, lock_lib.LOCK_FILE))


def test_two_concurrent_adds_leave_a_consistent_index(built, tmp_path):
  index, more = built["index"], built["more"]
  half = [os.path.join(more, f"{i}.jpg") for i in range(3)], [os.path.join(more, f"{i}.jpg") for i in range(3, 6)]
  writers = [subprocess.Popen([sys.executable, "-m", "rsvlm_jax.tools.index", "add", "--index", index, "--images",
                               *files, "--batch_size", "1", "--shard_rows", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for files in half]
  done = [(w.wait(timeout=300), w.stderr.read()) for w in writers]
  for rc, err in done:
    assert rc in (0, 2), err[-2000:]
    if rc == 2:  # Refused (the other held the index), never both written.
      assert "is being written by pid" in err and index in err
  assert any(rc == 0 for rc, _ in done)
  store = _assert_consistent(index, built["reference"])
  want = {os.path.join(built["folder"], n) for n in ("a.jpg", "b.jpg", "c.jpg")}
  for files, (rc, _) in zip(half, done):
    want |= set(files) if rc == 0 else set()
  assert set(store.paths()) == want


def test_a_moved_folder_warns_at_query_is_re_pointed_by_add_and_prune_drops_deleted_files(
    built, tiny_clip, tmp_path, monkeypatch, capsys):  # noqa: F811
  index, folder = built["index"], built["folder"]
  before = _by_path(index)
  moved = str(tmp_path / "moved")
  os.rename(folder, moved)
  capsys.readouterr()
  assert index_main(["query", "--index", index, "--text", "farmland", "--k", "2",
                     "--out", str(tmp_path / "r.json")]) == 0
  out, err = capsys.readouterr()
  assert "warning: 2 of 2 hits point to files that are gone" in err and "index prune" in err
  assert out.count("(file gone)") == 2
  res = json.loads((tmp_path / "r.json").read_text())
  assert res["missing_hits"] == 2 and all(h["missing"] for h in res["results"])

  read = []
  real_read = embed._read  # pylint: disable=protected-access
  monkeypatch.setattr(embed, "_read", lambda model, path: read.append(path) or real_read(model, path))
  link = str(tmp_path / "link")
  os.symlink(moved, link)  # The same files twice (a symlink and the folder itself): one row each.
  assert index_main(["add", "--index", index, "--images", moved, link]) == 0
  assert "3 moved" in capsys.readouterr().out and not read  # Nothing embedded again.
  after = _by_path(index)
  assert sorted(after) == sorted(os.path.join(moved, n) for n in ("a.jpg", "b.jpg", "c.jpg"))
  for name in ("a.jpg", "b.jpg", "c.jpg"):
    np.testing.assert_array_equal(after[os.path.join(moved, name)], before[os.path.join(folder, name)])
  assert index_main(["add", "--index", index, "--images", os.path.join(link, "*.jpg")]) == 0
  assert "3 already indexed" in capsys.readouterr().out and not read

  os.remove(os.path.join(moved, "b.jpg"))
  assert index_main(["prune", "--index", index, "--dry_run"]) == 0
  assert "Would drop 1 row(s)" in capsys.readouterr().out and len(_by_path(index)) == 3
  assert index_main(["prune", "--index", index]) == 0
  assert "Dropped 1 row(s) whose file is gone" in capsys.readouterr().out
  pruned = _by_path(index)
  assert sorted(pruned) == [os.path.join(moved, "a.jpg"), os.path.join(moved, "c.jpg")]
  for path, row in pruned.items():
    np.testing.assert_array_equal(row, after[path])
  for name in ("a.jpg", "c.jpg"):
    os.remove(os.path.join(moved, name))
  assert index_main(["prune", "--index", index]) == 2  # All gone: an unmounted disk? Nothing dropped.
  assert "every one of its 2 indexed files is gone" in capsys.readouterr().err and len(_by_path(index)) == 2


@pytest.mark.parametrize("flag,value", [("--shard_rows", "0"), ("--shard_rows", "-1"), ("--batch_size", "0")])
def test_bad_batch_or_shard_size_is_refused_before_anything_is_created(tiny_clip, tmp_path, flag, value):  # noqa: F811
  folder = str(tmp_path / "images")
  _jpegs(folder, ["a.jpg"], seed=3)
  out = str(tmp_path / "INDEX")
  run = _tool("build", "--model", tiny_clip, "--images", folder, "--out", out, flag, value, timeout=120)  # No hang.
  assert run.returncode == 2 and run.stderr.strip() == f"index build: error: {flag} must be at least 1, got {value}"
  assert not os.path.exists(out)
  if value == "0":
    index_tool.build(tiny_clip, [folder], out, log_every=0)
    before = sorted(os.listdir(out))
    assert index_main(["add", "--index", out, "--images", folder, flag, value]) == 2
    assert sorted(os.listdir(out)) == before


def test_several_queries_one_model_load_a_table_and_no_file_unless_asked(built, tmp_path, monkeypatch, capsys):
  index = built["index"]
  loads = []
  real_load = index_tool._load_model  # pylint: disable=protected-access
  monkeypatch.setattr(index_tool, "_load_model", lambda d: loads.append(d) or real_load(d))
  monkeypatch.chdir(tmp_path)
  image = os.path.join(built["folder"], "b.jpg")
  assert index_main(["query", "--index", index, "--text", "a harbor", "a forest", "--text", "fields",
                     "--image", image, "--k", "2"]) == 0
  out = capsys.readouterr().out
  assert len(loads) == 1 and not os.path.exists(tmp_path / "results.json")
  for title in ("text: a harbor  (2 hits)", "text: a forest", "text: fields", "image: b.jpg"):
    assert title in out
  assert out.count("    1  ") == 4 and out.count("    2  ") == 4 and f"{image}" in out

  assert index_main(["query", "--index", index, "--text", "x", "--out", str(tmp_path)]) == 2  # A folder.
  assert "--out" in capsys.readouterr().err and len(loads) == 1  # Refused before the model is loaded.
  assert index_main(["query", "--index", index, "--image", str(tmp_path / "nope.png")]) == 2
  assert "nope.png: no such file" in capsys.readouterr().err and len(loads) == 1

  res = index_tool.query(index, text=["a harbor", "fields"], image=[image], k=3, out=str(tmp_path / "r.json"),
                         grid=str(tmp_path / "r.png"))
  on_disk = json.loads((tmp_path / "r.json").read_text())
  assert on_disk == json.loads(json.dumps(res)) and "results" not in on_disk
  assert [q["query"] for q in on_disk["queries"]] == [{"text": "a harbor"}, {"text": "fields"}, {"image": image}]
  assert all(len(q["results"]) == 3 and q["missing_hits"] == 0 for q in on_disk["queries"])
  assert on_disk["queries"][2]["results"][0]["path"] == image
  assert os.path.isfile(tmp_path / "r.png")
