r"""Scores visual grounding as DIOR-RSVG reports it: Acc@0.5 and mean IoU of one box per referring expression.

  python -m rsvlm_jax.evaluate.grounding --refs=REFS.jsonl --preds=PREDS.jsonl [--image_size=800,800] [--out=O]

REFS.jsonl is in the RS-GPT4V test layout (question rows {"question_id", "image", "text"}, answer rows
{"question_id", "answer"}) with the box in the answer text; PREDS.jsonl as LLaVA-style tools write it
({"question_id", "text"}). Boxes are read in any form rsvlm_jax/boxes.py knows: four PaliGemma location tokens
`<locYYYY>` (ymin, xmin, ymax, xmax), GeoChat `{<x1><y1><x2><y2>}` on 0-100, Qwen-VL `<box>(x1,y1),(x2,y2)</box>`
on 0-1000, `[x1, y1, x2, y2]` in 0-1 or in pixels (which need --image_size, or force a scale with
--bracket_scale). The first box of each text is used. Every reference needs exactly one prediction and a box:
a missing, extra or duplicate question_id, or a reference without a readable box, is an error naming it
(exit 2). A prediction without a readable box scores IoU 0 (counted in `no_box`).

Prints a table, then one JSON object last on stdout:
  acc@0.5   share of expressions whose predicted box has IoU >= 0.5 with the reference, in percent;
  mean_iou  the mean IoU, in percent (as DIOR-RSVG's mIoU);
  count, no_box  numbers of expressions, and of predictions without a readable box.
IoU is computed on boxes normalised to [0, 1]; it equals the IoU in pixels (scaling an axis scales every area
by the same factor).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from absl import flags

from rsvlm_jax import boxes as boxes_lib
from rsvlm_jax.evaluate import qa_files
from rsvlm_jax.runtime import cli

FLAGS = flags.FlagValues()  # This command's flags only (runtime/cli.py): importing it defines no global flag.
_REFS = flags.DEFINE_string("refs", None, "Reference JSONL (RS-GPT4V test layout), boxes in the answers.",
                            flag_values=FLAGS)
_PREDS = flags.DEFINE_string("preds", None, 'Predictions JSONL {"question_id", "text"}.', flag_values=FLAGS)
_IMAGE_SIZE = flags.DEFINE_string("image_size", None, "WIDTH,HEIGHT of every image, for boxes written in pixels "
                                  "(DIOR-RSVG: 800,800).", flag_values=FLAGS)
_BRACKET_SCALE = flags.DEFINE_enum("bracket_scale", "auto", ["auto", "unit", "percent", "permille", "pixel"],
                                   "Scale of [x1, y1, x2, y2] boxes (auto: 0-1 if every value <= 1, else pixels).",
                                   flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "Where to write the metrics JSON (default: print only).", flag_values=FLAGS)
flags.mark_flags_as_required(["refs", "preds"], flag_values=FLAGS)

THRESHOLD = 0.5


def iou(a: Sequence[float], b: Sequence[float]) -> float:
  """Intersection over union of two (ymin, xmin, ymax, xmax) boxes; 0 when the union is empty."""
  h = min(a[2], b[2]) - max(a[0], b[0])
  w = min(a[3], b[3]) - max(a[1], b[1])
  inter = max(h, 0.0) * max(w, 0.0)
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / union if union > 0 else 0.0


def grounding_metrics(refs: Mapping[str, Sequence[float]], preds: Mapping[str, Optional[Sequence[float]]]) -> dict:
  """Metrics of the module doc from refs {id: box} and preds {id: box or None} (same ids)."""
  if not refs:
    raise ValueError("no reference expressions to score")
  ious = [iou(box, preds[q]) if preds[q] is not None else 0.0 for q, box in refs.items()]
  return {
      "acc@0.5": 100.0 * sum(v >= THRESHOLD for v in ious) / len(ious),
      "mean_iou": 100.0 * sum(ious) / len(ious),
      "count": len(ious),
      "no_box": sum(preds[q] is None for q in refs),
  }


def parse_image_size(text: Optional[str]) -> Optional[tuple[int, int]]:
  """'800,800' -> (800, 800); None stays None; ValueError naming --image_size otherwise."""
  if not text:
    return None
  parts = text.replace("x", ",").split(",")
  try:
    width, height = (int(p) for p in parts)
  except ValueError:
    raise ValueError(f"--image_size must be WIDTH,HEIGHT in pixels (e.g. 800,800), got {text!r}") from None
  if width <= 0 or height <= 0:
    raise ValueError(f"--image_size must be positive, got {text!r}")
  return width, height


def reference_box(text: str, where: str, image_size=None, bracket_scale: str = "auto") -> tuple[float, ...]:
  """The first box of a reference answer; ValueError naming `where` when there is none or it is bad."""
  try:
    found = boxes_lib.parse_any(text, image_size, bracket_scale)
  except ValueError as e:
    hint = " (give --image_size WIDTH,HEIGHT)" if "needs the image size" in str(e) else ""
    raise ValueError(f"{where}: {e}{hint}") from None
  if not found:
    raise ValueError(f"{where}: no box in the answer {text!r}")
  return found[0]


def predicted_box(text: str, image_size=None, bracket_scale: str = "auto") -> Optional[tuple[float, ...]]:
  """The first readable box of a prediction, or None (no box, or an inverted / out-of-image one)."""
  try:
    found = boxes_lib.parse_any(text, image_size, bracket_scale)
  except ValueError:
    return None
  return found[0] if found else None


def score_files(refs_path: str, preds_path: str, image_size=None, bracket_scale: str = "auto") -> dict:
  """Reads both files (qa_files), parses the boxes and scores them; ValueError naming file / line / id."""
  refs = qa_files.read_refs(refs_path)
  preds = qa_files.match(refs, qa_files.read_preds(preds_path), refs_path, preds_path)
  ref_boxes = {q: reference_box(r.answer, f"references file {refs_path}:{r.line} question_id={q!r}", image_size,
                                bracket_scale) for q, r in refs.items()}
  pred_boxes = {q: predicted_box(text, image_size, bracket_scale) for q, text in preds.items()}
  return grounding_metrics(ref_boxes, pred_boxes)


def table(metrics: dict) -> str:
  return "\n".join([f"grounding (n={metrics['count']}, no box: {metrics['no_box']})",
                    f"  Acc@0.5  {metrics['acc@0.5']:6.2f} %", f"  mean IoU {metrics['mean_iou']:6.2f} %"])


def run(refs_path: str, preds_path: str, out_path: Optional[str] = None, image_size=None,
        bracket_scale: str = "auto") -> dict:
  """Scores the files, prints the table and then the JSON (last), writes the JSON to `out_path`."""
  metrics = score_files(refs_path, preds_path, image_size, bracket_scale)
  cli.print_result(table(metrics), metrics, out_path)
  return metrics


def main(argv):
  del argv
  if _OUT.value:
    cli.check_output_file(_OUT.value, "--out")  # Before the files are read.
  with cli.user_errors("grounding", cli.USER_ERRORS + (OSError,)):
    run(_REFS.value, _PREDS.value, _OUT.value, parse_image_size(_IMAGE_SIZE.value), _BRACKET_SCALE.value)


if __name__ == "__main__":
  cli.run(main, FLAGS, "grounding")
