"""caption_files: the TFDS harness on its dummy CSV, and the CSV/JSONL rules (merging, splits, refused paths)."""
import json
import shutil

from etils import epath
import pytest
import tensorflow_datasets as tfds

import rsvlm_datasets
from rsvlm_datasets import caption_files_format as fmt
from rsvlm_datasets import caption_formats as cf
from rsvlm_datasets.caption_files import caption_files_dataset_builder

DUMMY = caption_files_dataset_builder.Builder.code_path.parent / "dummy_data"


class CaptionFilesTest(tfds.testing.DatasetBuilderTestCase):
  """Config `default` on dummy_data/captions.csv (9 rows, 6 images)."""
  DATASET_CLASS = caption_files_dataset_builder.Builder
  EXAMPLE_DIR = DUMMY  # Used as manual_dir (the builder has MANUAL_DOWNLOAD_INSTRUCTIONS).
  BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
  SPLITS = {"train": 3, "validation": 1, "test": 2}


def _build(config, manual_dir, data_dir):
  rsvlm_datasets.import_builder("caption_files")
  builder = tfds.builder(f"caption_files/{config}", data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _manual_dir(tmp_path, name, text):
  m = tmp_path / "m"
  shutil.copytree(DUMMY / "images", m / "images")
  (m / name).write_text(text, encoding="utf-8")
  return epath.Path(m)


def test_dummy_build_merges_rows_and_defaults_to_train(tmp_path):
  builder = _build("default", DUMMY, tmp_path / "d")
  train = {ex["filename"].decode(): ex for ex in builder.as_data_source("train")}
  assert sorted(train) == ["images/farmland_2.jpg", "images/forest_3.jpg", "images/harbor_1.jpg"]
  harbor = train["images/harbor_1.jpg"]  # Two rows, the second without a split.
  assert [c.decode() for c in harbor["captions"]] == ["many boats are moored in a harbor",
                                                      "a harbor with white boats, a pier and blue water"]
  assert harbor["image"].shape == (40, 48, 3) and harbor["image_id"] == b"images/harbor_1.jpg"
  assert harbor["class_name"] == b""
  test = {ex["filename"].decode() for ex in builder.as_data_source("test")}
  assert test == {"images/beach_5.jpg", "images/city_6.jpg"}  # './images/city_6.jpg' normalised.
  assert builder.info.metadata["annotation_file"].endswith("captions.csv")
  assert len(builder.info.metadata["annotation_sha256"]) == 64


def test_jsonl_with_class_names(tmp_path):
  lines = [{"image": "images/harbor_1.jpg", "caption": "a harbor", "class_name": "harbor"},
           {"image": "images\\harbor_1.jpg", "caption": "boats", "split": "test"},
           {"image": "images/beach_5.jpg", "caption": "a beach", "split": "TRAIN"}]
  m = _manual_dir(tmp_path, "ann.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
  records = fmt.parse(fmt.find_annotation_file(m), cf.RecordPolicy())
  assert [(r.image_id, r.split, r.captions, r.class_name) for r in records] == [
      ("images/harbor_1.jpg", "test", ("a harbor", "boats"), "harbor"),
      ("images/beach_5.jpg", "train", ("a beach",), "")]


@pytest.mark.parametrize("image", ["/etc/passwd", "../secret.jpg", "images/../../secret.jpg", "C:\\x\\a.jpg"])
def test_absolute_or_escaping_paths_are_refused_naming_the_line(tmp_path, image):
  m = _manual_dir(tmp_path, "captions.csv", "image,caption\nimages/harbor_1.jpg,a harbor\n"
                  f"{image},something secret\n")
  (tmp_path / "secret.jpg").write_bytes((m / "images" / "beach_5.jpg").read_bytes())
  with pytest.raises(cf.BadRecordError, match=r"captions\.csv: line 3 image=.*(leaves the image folder|is absolute)"):
    _build("default", m, tmp_path / "d1")
  builder = _build("lenient", m, tmp_path / "d2")  # Skipped, never read.
  assert builder.info.splits["train"].num_examples == 1
  [skipped] = builder.info.metadata["skipped_records"]
  assert skipped["record"].startswith("line 3 ")


def test_bad_rows(tmp_path):
  text = ("Image, Caption ,split\n"
          "images/harbor_1.jpg,a harbor,train\n"
          "images/harbor_1.jpg,the same harbor,test\n"  # Two splits for one image.
          "images/beach_5.jpg,,train\n"  # Empty caption.
          "images/forest_3.jpg,a forest,holdout\n"  # Unknown split.
          "images/river_4.jpg,a river, a road,val\n"  # Unquoted comma.
          "images/missing.jpg,nothing,train\n"
          "images/city_6.jpg,a city,\n")
  m = _manual_dir(tmp_path, "captions.csv", text)
  policy = cf.RecordPolicy(skip_bad_records=True)
  records = fmt.parse(m / "captions.csv", policy)
  assert [r.image_id for r in records] == ["images/city_6.jpg"]
  reasons = {s["record"]: s["reason"] for s in policy.skipped}
  assert reasons == {
      "line 4 image='images/beach_5.jpg'": "missing or empty 'caption'",
      "line 5 image='images/forest_3.jpg'": reasons["line 5 image='images/forest_3.jpg'"],
      "line 6": reasons["line 6"],
      "image 'images/harbor_1.jpg' (lines 2, 3)": "rows give different splits: 'train' (line 2), 'test' (line 3)",
      "image 'images/missing.jpg' (line 7)": f"image not found: {m / 'images/missing.jpg'}"}
  assert "unknown split 'holdout'" in reasons["line 5 image='images/forest_3.jpg'"]
  assert "unquoted comma" in reasons["line 6"]
  with pytest.raises(cf.BadRecordError, match=r"captions\.csv: line 4 image='images/beach_5.jpg': missing or empty"):
    fmt.parse(m / "captions.csv", cf.RecordPolicy())  # Strict: the first bad row stops it.


def test_fatal_files(tmp_path):
  m = _manual_dir(tmp_path, "captions.csv", "file,text\na.jpg,x\n")
  with pytest.raises(cf.BadRecordError, match=r"captions\.csv:1: the header has no 'image' or 'caption' column"):
    fmt.parse(m / "captions.csv", cf.RecordPolicy(skip_bad_records=True))
  (m / "captions.csv").write_text("image,caption\n")
  with pytest.raises(cf.BadRecordError, match="no rows: nothing to build"):
    fmt.parse(m / "captions.csv", cf.RecordPolicy())
  (m / "more.jsonl").write_text("{}\n")
  with pytest.raises(cf.BadRecordError, match=r"expected exactly one annotation file .* found 2 \(captions.csv, more"):
    fmt.find_annotation_file(m)
  (m / "captions.csv").write_bytes(b"\xef\xbb\xbfimage,caption\nimages/beach_5.jpg,caf\xc3\xa9 on a beach\n")
  (m / "more.jsonl").unlink()
  assert fmt.parse(fmt.find_annotation_file(m), cf.RecordPolicy())[0].captions == ("café on a beach",)  # BOM.
  (m / "captions.csv").write_bytes(b"image,caption\nimages/beach_5.jpg,caf\xe9\n")
  with pytest.raises(cf.BadRecordError, match="not UTF-8"):
    fmt.parse(m / "captions.csv", cf.RecordPolicy())


_ROWS_AFTER = ("images/forest_3.jpg,a dense forest,test\n"
               "images/river_4.jpg,a river,val\n"
               "images/city_6.jpg,grey buildings,train\n")


@pytest.mark.parametrize("rest", [
    _ROWS_AFTER,  # The quote runs to the end of the file.
    _ROWS_AFTER + 'images/farmland_2.jpg,"fields, and a road",train\n',  # A later quote closes it: text follows.
    _ROWS_AFTER + 'images/farmland_2.jpg,a 12 m wide road"\n',  # A later quote closes it at a line end.
])
def test_unterminated_quote_is_named_and_the_rows_after_it_are_kept(tmp_path, rest):
  """One open quote swallowed every following row into one caption (a test row vanished; the build passed)."""
  m = _manual_dir(tmp_path, "captions.csv", 'image,caption,split\n'
                  'images/harbor_1.jpg,a harbor,train\n'
                  'images/beach_5.jpg,"a beach with the quote never closed,train\n' + rest)
  with pytest.raises(cf.BadRecordError, match=r"captions\.csv: line 3: unterminated quote.* the quoted field "
                     r"opening on line 3 "):
    fmt.parse(m / "captions.csv", cf.RecordPolicy())
  policy = cf.RecordPolicy(skip_bad_records=True)
  records = fmt.parse(m / "captions.csv", policy)
  assert [s["record"] for s in policy.skipped] == ["line 3"]
  by_image = {r.image_id: r for r in records}
  assert "images/beach_5.jpg" not in by_image
  assert by_image["images/forest_3.jpg"].split == "test" and by_image["images/city_6.jpg"].captions == (
      "grey buildings",)
  assert len(records) == 4 + (rest != _ROWS_AFTER)


def test_unterminated_quote_fails_a_strict_build(tmp_path):
  m = _manual_dir(tmp_path, "captions.csv", 'image,caption,split\nimages/harbor_1.jpg,"a harbor\n' + _ROWS_AFTER)
  with pytest.raises(cf.BadRecordError, match=r"captions\.csv: line 2: unterminated quote"):
    _build("default", m, tmp_path / "d1")
  builder = _build("lenient", m, tmp_path / "d2")
  assert builder.info.splits["test"].num_examples == 1 and builder.info.splits["train"].num_examples == 1
  assert [s["record"] for s in builder.info.metadata["skipped_records"]] == ["line 2"]


def test_quoting_that_is_valid_csv_still_reads(tmp_path):
  m = _manual_dir(tmp_path, "captions.csv", 'image,caption,split\n'
                  'images/harbor_1.jpg,"a harbor\r\nwith two lines, and a ""quote""",test\n'
                  'images/beach_5.jpg,a 3" pipe,train\n'
                  'images/city_6.jpg,"a city" at night\n')  # Text after a closing quote: not valid CSV.
  policy = cf.RecordPolicy(skip_bad_records=True)
  records = fmt.parse(m / "captions.csv", policy)
  assert [(r.image_id, r.captions) for r in records] == [
      ("images/harbor_1.jpg", ('a harbor\nwith two lines, and a "quote"',)),  # Line ends read as '\n'.
      ("images/beach_5.jpg", ('a 3" pipe',))]
  [skipped] = policy.skipped
  assert skipped["record"] == "line 5" and "text after the closing quote" in skipped["reason"]


def test_long_fields(tmp_path, monkeypatch):
  """A field over 128 KiB raised a bare `field larger than field limit` (lenient too, no file or line)."""
  import csv  # pylint: disable=g-import-not-at-top
  long_caption = "a very long caption " * 10_000  # 200 KB.
  m = _manual_dir(tmp_path, "captions.csv", f'image,caption\nimages/harbor_1.jpg,"{long_caption}"\n'
                  'images/beach_5.jpg,a beach\n')
  limit = csv.field_size_limit()
  records = fmt.parse(m / "captions.csv", cf.RecordPolicy())
  assert records[0].captions == (long_caption.strip(),) and len(records) == 2
  assert csv.field_size_limit() == limit  # Restored for other code in the process.
  monkeypatch.setattr(fmt, "FIELD_LIMIT", 1000)  # Past the limit: a bad record naming file and line.
  with pytest.raises(cf.BadRecordError, match=r"captions\.csv: line 2: a field longer than 1000 characters"):
    fmt.parse(m / "captions.csv", cf.RecordPolicy())
  policy = cf.RecordPolicy(skip_bad_records=True)
  assert [r.image_id for r in fmt.parse(m / "captions.csv", policy)] == ["images/beach_5.jpg"]
  assert [s["record"] for s in policy.skipped] == ["line 2"]


def test_builds_read_deep_pngs_and_exif_orientation_as_the_tools_do(tmp_path):
  """A 48-bit PNG of 12-bit data (was near-black) and a JPEG tagged Orientation=6 (was stored on its side)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import png  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rsvlm_jax.data import image_io  # pylint: disable=g-import-not-at-top
  m = _manual_dir(tmp_path, "captions.csv", "image,caption\ndeep.png,a deep scene\nturned.jpg,a turned photo\n")
  deep = (np.arange(20 * 30 * 3).reshape(20, 30 * 3) % 4096).astype(np.uint16)
  with open(m / "deep.png", "wb") as f:
    png.Writer(30, 20, greyscale=False, bitdepth=16).write(f, deep.tolist())
  exif = Image.Exif()
  exif[image_io.EXIF_ORIENTATION] = 6
  Image.new("RGB", (32, 16), (200, 30, 30)).save(m / "turned.jpg", exif=exif)
  builder = _build("default", m, tmp_path / "d")
  images = {ex["filename"].decode(): ex["image"] for ex in builder.as_data_source("train")}
  np.testing.assert_array_equal(images["deep.png"], image_io.read_image(str(m / "deep.png")))
  assert images["deep.png"].mean() > 80
  assert images["turned.jpg"].shape == (32, 16, 3)
