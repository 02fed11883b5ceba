"""Pictures: the training-curve PNG a run writes, and TensorBoard's final metrics and example captions."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
from PIL import Image

from rsvlm_jax.evaluate import report
from rsvlm_jax.tools import plots


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
