"""Pictures: the training-curve PNG a run writes, and TensorBoard's final metrics and example captions."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
from PIL import Image

from rsvlm_jax import plots
from rsvlm_jax.evaluate import report


def test_training_curves_from_metrics_jsonl(tmp_path):
  path = tmp_path / "metrics.jsonl"
  rows = [{"step": s, "loss": 5.0 / s, "loss/captioning": 3.0 / s, "lr": 1e-3 * s, "temperature": 10.0}
          for s in range(1, 6)]
  rows.append({"step": 3, "loss": 9.0, "lr": 3e-3, "loss/captioning": 1.0, "temperature": 10.0})  # Resumed.
  rows.append({"step": 5, "retrieval/mR": 12.0})  # An eval row: not a training row.
  path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
  out = str(tmp_path / "curves.png")
  assert plots.training_curves_png(str(path), out)
  with Image.open(out) as im:
    pixels = np.asarray(im.convert("RGB"))
  assert im.size == (900, 2 * 170 + 18)  # loss, loss/captioning, lr, temperature: two rows of three panels.
  assert (np.abs(pixels.astype(int) - (31, 90, 180)).sum(-1) < 30).sum() > 100  # The curves are drawn.
  empty = tmp_path / "empty.jsonl"
  empty.write_text("")
  assert not plots.training_curves_png(str(empty), str(tmp_path / "none.png"))


def _events(logdir: str) -> list:
  """Every Event of the TFRecord event files in `logdir` (read with tensorboardX's protos)."""
  import struct  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out = []
  for path in glob.glob(os.path.join(logdir, "events*")):
    with open(path, "rb") as f:
      data = f.read()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      out.append(event_pb2.Event.FromString(data[pos + 12:pos + 12 + length]))
      pos += 12 + length + 4
  return out


def test_final_metrics_and_examples_in_tensorboard(tmp_path):
  metrics = {"step": 7, "retrieval": {"t2i_R@10": 42.0}, "captioning": {"CIDEr-D": 1.5},
             "examples": [{"image_id": "x1", "prediction": "a port", "references": ["a harbor"]}]}
  report.to_tensorboard(str(tmp_path), metrics)
  values = {(v.tag, e.step): v for e in _events(str(tmp_path)) for v in e.summary.value}
  assert values[("final/retrieval/t2i_R_10", 7)].simple_value == 42.0  # TensorBoard writes "@" as "_".
  assert values[("final/captioning/CIDEr-D", 7)].simple_value == 1.5
  text = [v for (tag, _), v in values.items() if tag.startswith("final/example_captions")][0]
  text = text.tensor.string_val[0].decode()
  assert "a port" in text and "a harbor" in text


def test_a_run_writes_its_training_curves(tiny_run):
  with Image.open(os.path.join(tiny_run, "training_curves.png")) as im:
    assert im.size[0] == 900


CAPTION = "a port with many ships near a large harbor, some buildings along the coast and a road to the city"


def test_wrapped_caption_keeps_its_spaces():
  """The sheet's font draws a space as wide as a letter (Pillow >= 10.1's load_default() is a TrueType font
  whose space is 2 px: words ran together) and wrapping keeps every word and the spaces between them."""
  font = plots.default_font()
  assert font.getlength(" ") >= 0.8 * font.getlength("n")
  lines = plots.wrap_text(CAPTION, 192, 10)
  assert len(lines) > 1 and " ".join(lines) == CAPTION
  assert all(plots.text_width(line) <= 192 for line in lines)
  assert all(" " in line for line in lines)
  cut = plots.wrap_text(CAPTION, 192, 2)  # Text left over: the last line says so.
  assert len(cut) == 2 and cut[0] == lines[0] and cut[1].endswith("...") and plots.text_width(cut[1]) <= 192
  assert plots.wrap_text("x" * 100, 60, 10) == ["x" * 10] * 10  # A word wider than the line is broken.
  assert plots.wrap_text("東京 port", 100, 2) == ["?? port"]  # Characters the font cannot draw.


def test_sheet_panels_are_labelled_with_file_name_and_size(tmp_path):
  labels = [plots.sheet_label("/data/scenes/harbor_0001.tif", 224), plots.sheet_label("b.png")]
  assert labels == ["harbor_0001.tif \xb7 224 px", "b.png"]
  size, panels = plots.sheet_layout([CAPTION, "a field"], labels, thumb=192, columns=4, lines=5)
  assert size == (4 * 200, 192 + 6 + 60)  # Labels take no extra room.
  (box, texts), (box2, texts2) = panels
  assert texts[0].text == labels[0] and texts[0].xy == (4, 2) and box == (4, 15, 192, 179)
  assert " ".join(t.text for t in texts[1:]) == CAPTION and texts2[1].text == "a field" and box2[0] == 204
  long = plots.sheet_layout(["x"], ["a_very_long_file_name_of_a_scene_from_the_archive.png \xb7 224 px"])[1][0][1]
  assert long[0].text.endswith("224 px") and "..." in long[0].text and plots.text_width(long[0].text) <= 192
  assert plots.sheet_layout(["x"])[1][0][0] == (4, 2, 192, 192)  # Without labels: the whole thumbnail box.
  out = str(tmp_path / "sheet.png")
  plots.captioned_sheet_png([np.zeros((20, 30, 3), np.uint8)] * 2, [CAPTION, "a field"], out, labels=labels)
  with Image.open(out) as im:
    assert im.size == size


def test_confusion_matrix_names_its_axes_and_counts_its_cells(tmp_path):
  names = ["airport", "beach", "dense residential"]
  m = np.array([[5, 1, 0], [0, 3, 2], [1, 0, 117]])
  lay = plots.confusion_layout(m, names, title="top-1 85.00%")
  texts = {(t.text, t.vertical) for t in lay.texts}
  assert ("top-1 85.00%", False) in texts and ("predicted class", False) in texts and ("true class", True) in texts
  for name in names:  # Each class on both axes: rows across, columns read bottom to top.
    assert (name, False) in texts and (name, True) in texts
  left, top = lay.origin
  cells = {t.text: t for t in lay.texts if top <= t.xy[1] < top + 3 * lay.cell and t.xy[0] >= left}
  assert sorted(cells) == ["0", "1", "117", "2", "3", "5"]  # One count per cell (values seen once each).
  assert lay.cell >= plots.text_width("117") + 4  # Cells grow to hold their counts.
  assert all(left <= t.xy[0] and t.xy[0] + plots.text_width(t.text) <= left + 3 * lay.cell for t in cells.values())
  assert lay.size[0] >= left + 3 * lay.cell and lay.size[1] >= top + 3 * lay.cell
  many = [f"c{i}" for i in range(31)]
  big = plots.confusion_layout(np.eye(31, dtype=int), many)
  assert not [t for t in big.texts if t.text in ("0", "1")] and big.cell == 16  # No counts over 30 classes.
  assert len([t for t in plots.confusion_layout(np.eye(31, dtype=int), many, numbers=True).texts
              if t.text in ("0", "1")]) == 31 * 31
  out = str(tmp_path / "c.png")
  plots.confusion_matrix_png(m, names, out, title="top-1 85.00%")  # The zero-shot tool's call.
  with Image.open(out) as im:
    assert im.size == lay.size
