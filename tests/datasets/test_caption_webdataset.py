"""caption_webdataset: RS5M's shards (written by webdataset.TarWriter) built in parallel, resumed, across machines."""
import hashlib
import json
import os
import subprocess
import sys

from etils import epath
import pytest
import tensorflow_datasets as tfds

from rsvlm_datasets import archive_samples
from rsvlm_datasets import parallel_build
from rsvlm_datasets.caption_webdataset import caption_webdataset_dataset_builder as wds_builder
from rsvlm_jax import build_dataset
from rsvlm_jax.runtime import cli
from tests.datasets import webdataset_shards as shards

NAME = "caption_webdataset/rs5m"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RS5MDummyTest(tfds.testing.DatasetBuilderTestCase):
  """Config rs5m on dummy_data/ (pub11-train-0000.tar: 3 samples, rs3-val-0000.tar: 2)."""
  DATASET_CLASS = wds_builder.Builder
  EXAMPLE_DIR = wds_builder.Builder.code_path.parent / "dummy_data"
  BUILDER_CONFIG_NAMES_TO_TEST = ["rs5m"]
  SPLITS = {"train": 3, "validation": 2}


@pytest.fixture(scope="module")
def rs5m_dir(tmp_path_factory):
  """Three RS5M shards of 20 samples: one corrupt image (key 3) and one sample without a caption (key 25)."""
  m = tmp_path_factory.mktemp("rs5m")
  shards.write_rs5m_shard(m / "pub11-train-0000.tar", 0, 20, corrupt={3})
  shards.write_rs5m_shard(m / "pub11-train-0001.tar", 20, 20, no_caption={25})
  (m / "more").mkdir()
  shards.write_rs5m_shard(m / "more" / "rs3-val-0000.tar", 40, 20)
  return m


def _records(builder):
  """Order-independent content of a build: (split, image_id, filename, captions, sha1 of the pixels)."""
  out = set()
  for split in builder.info.splits:
    for ex in builder.as_data_source(split):
      out.add((split, ex["image_id"].decode(), ex["filename"].decode(), tuple(c.decode() for c in ex["captions"]),
               hashlib.sha1(ex["image"].tobytes()).hexdigest()))
  return out


@pytest.fixture(scope="module")
def one_worker_build(rs5m_dir, tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("d1"))
  return build_dataset.build(NAME, data_dir, str(rs5m_dir), workers=1)


def test_rs5m_build_reads_back_with_the_caption_features(one_worker_build):
  builder = one_worker_build
  assert {s: i.num_examples for s, i in builder.info.splits.items()} == {"train": 38, "validation": 20}
  assert builder.info.splits["train"].num_shards == 2
  train = {ex["image_id"].decode(): ex for ex in builder.as_data_source("train")}
  ex = train["pub11-train-0000/000000007"]
  assert ex["filename"] == b"img_7.jpg" and [c.decode() for c in ex["captions"]] == ["a scene number 7"]
  assert ex["image"].shape == (12, 16, 3) and ex["class_name"] == b""
  assert "pub11-train-0000/000000003" not in train and "pub11-train-0001/000000025" not in train
  assert set(builder.info.features.keys()) == {"image", "image_id", "filename", "captions", "class_name"}
  # Stored as given: the JPEG bytes of the shard, not a re-encoding.
  raw = builder.as_data_source("train", decoders={"image": tfds.decode.SkipDecoding()})
  assert any(r["image"] == shards.jpeg(7) for r in raw)


def test_skips_are_counted_by_reason_and_named(one_worker_build):
  summary = json.loads((epath.Path(one_worker_build.data_dir) / parallel_build.SUMMARY_FILE).read_text())
  assert summary["skipped"] == {"corrupt image": 1, "no caption": 1}
  assert summary["examples"] == {"train": 38, "validation": 20}
  named = {(s["unit"], s["key"], s["reason"]) for s in summary["first_skipped"]}
  assert named == {("pub11-train-0000.tar", "000000003", "corrupt image"),
                   ("pub11-train-0001.tar", "000000025", "no caption")}
  assert one_worker_build.info.metadata["skipped"] == {"corrupt image": 1, "no caption": 1}
  assert not list(epath.Path(one_worker_build.data_dir).parent.glob(".parts-*"))  # Cleaned up.


def test_two_workers_build_the_same_records(rs5m_dir, one_worker_build, tmp_path):
  builder = build_dataset.build(NAME, str(tmp_path / "d2"), str(rs5m_dir), workers=2)
  assert _records(builder) == _records(one_worker_build)
  assert len(_records(builder)) == 58


def test_num_shards_and_finalize_equal_the_one_machine_build(rs5m_dir, one_worker_build, tmp_path):
  data_dir = str(tmp_path / "d")
  assert build_dataset.build(NAME, data_dir, str(rs5m_dir), num_shards=2, shard_index=0) is None
  with pytest.raises(cli.UserError, match=r"1 of 3 input\(s\) are not built yet .*pub11-train-0000.tar.*"
                     r"--shard_index \[1\] of --num_shards 2"):
    build_dataset.build(NAME, data_dir, finalize=True)
  assert build_dataset.build(NAME, data_dir, str(rs5m_dir), num_shards=2, shard_index=1) is None
  builder = build_dataset.build(NAME, data_dir, finalize=True)
  assert _records(builder) == _records(one_worker_build)
  assert builder.info.splits["train"].shard_lengths == one_worker_build.info.splits["train"].shard_lengths


def test_a_killed_build_resumes_without_redoing_finished_shards(rs5m_dir, one_worker_build, tmp_path,
                                                               monkeypatch):
  data_dir = str(tmp_path / "d")
  real = wds_builder.Builder._unit_examples  # pylint: disable=protected-access
  calls = []

  def killed_in_third_shard(self, unit, skips, max_side):
    calls.append(unit.name)
    for i, item in enumerate(real(self, unit, skips, max_side)):
      if unit.name == "pub11-train-0001.tar" and i == 5:
        raise KeyboardInterrupt  # Killed half-way through its second input (sorted: more/..., pub11-0000, 0001).
      yield item

  monkeypatch.setattr(wds_builder.Builder, "_unit_examples", killed_in_third_shard)
  with pytest.raises(KeyboardInterrupt):
    build_dataset.build(NAME, data_dir, str(rs5m_dir))
  assert calls == ["more/rs3-val-0000.tar", "pub11-train-0000.tar", "pub11-train-0001.tar"]
  builder = tfds.builder(NAME, data_dir=data_dir)
  parts = parallel_build.parts_dir(builder)
  assert all((parallel_build.unit_dir(parts, n) / "done.json").exists() for n in calls[:2])
  half = parallel_build.unit_dir(parts, calls[2])
  assert (half / "train.array_record").exists() and not (half / "done.json").exists()

  calls.clear()
  monkeypatch.setattr(wds_builder.Builder, "_unit_examples",
                      lambda self, *a: (calls.append(a[0].name), (yield from real(self, *a)))[1])
  builder = build_dataset.build(NAME, data_dir, str(rs5m_dir))
  assert calls == ["pub11-train-0001.tar"]  # Only the unfinished input.
  assert _records(builder) == _records(one_worker_build)
  assert not parts.exists()


def test_changed_flags_do_not_mix_into_an_interrupted_build(rs5m_dir, tmp_path):
  data_dir = str(tmp_path / "d")
  build_dataset.build(NAME, data_dir, str(rs5m_dir), num_shards=2, shard_index=0)
  with pytest.raises(cli.UserError, match=r"other settings: --max_side unset -> 32.*--overwrite"):
    build_dataset.build(NAME, data_dir, str(rs5m_dir), num_shards=2, shard_index=1, max_side=32)


def test_common_layout_txt_json_max_side_and_a_truncated_shard(tmp_path):
  import webdataset as wds  # pylint: disable=g-import-not-at-top
  m = tmp_path / "m"
  (m / "test").mkdir(parents=True)
  with wds.TarWriter(str(m / "shard-train-000.tar")) as sink:
    sink.write({"__key__": "a/0", "jpg": shards.jpeg(0, (64, 48)), "txt": "a big field"})
    sink.write({"__key__": "a/1", "png": shards.png(1), "json": json.dumps({"caption": ["one", "two"]})})
    sink.write({"__key__": "a/2", "jpg": shards.jpeg(2, mode="L"), "json": json.dumps({"text": "no caption key"})})
    sink.write({"__key__": "a/3", "txt": "a caption without an image"})
    sink.write({"__key__": "a/4", "jpg": shards.jpeg(4, mode="L"), "txt": "gray"})
  with wds.TarWriter(str(m / "test" / "000.tar")) as sink:
    for i in range(5):
      sink.write({"__key__": f"{i}", "jpg": shards.jpeg(10 + i), "txt": f"test {i}"})
  data = (m / "test" / "000.tar").read_bytes()
  (m / "test" / "000.tar").write_bytes(data[:len(data) // 2])  # Cut half-way: the first samples stay readable.
  builder = build_dataset.build("caption_webdataset/common", str(tmp_path / "d"), str(m), max_side=32)
  train = {ex["image_id"].decode(): ex for ex in builder.as_data_source("train")}
  assert sorted(train) == ["shard-train-000/a/0", "shard-train-000/a/1", "shard-train-000/a/4"]
  assert train["shard-train-000/a/0"]["image"].shape == (24, 32, 3)  # Longest side capped at 32.
  assert [c.decode() for c in train["shard-train-000/a/1"]["captions"]] == ["one", "two"]
  assert train["shard-train-000/a/4"]["image"].shape == (12, 16, 3)  # Gray: decoded, stored as RGB.
  assert train["shard-train-000/a/1"]["filename"] == b"1.png"
  summary = json.loads((epath.Path(builder.data_dir) / parallel_build.SUMMARY_FILE).read_text())
  assert summary["skipped"] == {"no caption": 1, "no image": 1, "unreadable member": 1}
  [unreadable] = [s for s in summary["first_skipped"] if s["reason"] == "unreadable member"]
  assert unreadable["unit"] == "test/000.tar" and "rest of the shard" in unreadable["detail"]
  assert 0 < builder.info.splits["test"].num_examples < 5
  assert builder.info.metadata["max_side"] == 32


def test_rs5m_refuses_other_tars_before_reading_anything(tmp_path):
  shards.write_rs5m_shard(tmp_path / "pub11-train-0000.tar", 0, 2)
  shards.write_rs5m_shard(tmp_path / "extra.tar", 0, 2)
  with pytest.raises(ValueError, match=r"1 tar\(s\) not named like RS5M's shards .*extra.tar"):
    build_dataset.build(NAME, str(tmp_path / "d"), str(tmp_path))


def test_truncated_jpeg_fails_the_end_marker_check():
  data = shards.jpeg(1, (32, 32))
  assert archive_samples.prepare_image(data, "x") is data
  with pytest.raises(archive_samples.SkipRecord) as e:
    archive_samples.prepare_image(data[:len(data) // 2], "x")
  assert e.value.reason == archive_samples.CORRUPT_IMAGE


def test_split_from_name():
  assert archive_samples.split_from_name("pub11-val-0003.tar") == "validation"
  assert archive_samples.split_from_name("test/shard-000.tar") == "test"
  assert archive_samples.split_from_name("train/x-valley-1.tar") == "train"
  assert archive_samples.split_from_name("shards/000.tar") == "train"


def test_parallel_flags_are_checked_first(tmp_path):
  with pytest.raises(cli.UserError, match="rsicd builds in one process; --workers"):
    build_dataset.build("rsicd", str(tmp_path / "d"), str(tmp_path / "missing"), workers=2)
  with pytest.raises(cli.UserError, match=r"--shard_index must be in \[0, --num_shards=2\), got 2"):
    build_dataset.build(NAME, str(tmp_path / "d"), str(tmp_path), num_shards=2, shard_index=2)
  proc = subprocess.run([sys.executable, "-m", "rsvlm_jax.build_dataset", NAME, f"--data_dir={tmp_path / 'd'}",
                         f"--manual_dir={tmp_path}", "--workers=0"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == "build_dataset: error: --workers must be at least 1, got 0"
