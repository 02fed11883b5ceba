"""Final evaluation report: WORKDIR/metrics.json and a console table."""
from __future__ import annotations

import json
import os
from typing import Any

import jax

RETRIEVAL_KEYS = ("i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "mR")
CAPTION_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D", "METEOR")


def build(results: dict[str, Any], num_test_images: int, step: int) -> dict[str, Any]:
  """Shapes evaluator results into the metrics.json contract (CIDEr-D on pycocoevalcap's x1 scale)."""
  out: dict[str, Any] = {"step": int(step), "num_test_images": int(num_test_images)}
  if "retrieval" in results:
    out["retrieval"] = {k: float(v) for k, v in results["retrieval"].items() if k in RETRIEVAL_KEYS}
    out["retrieval"]["eval_images_per_s"] = results["retrieval"].get("eval_images_per_s")
  if "captioning" in results:
    cap = results["captioning"]
    out["captioning"] = {k: float(cap[k]) for k in CAPTION_KEYS if k in cap}
    out["captioning"]["CIDEr-D_x100"] = 100.0 * out["captioning"]["CIDEr-D"]
    out["examples"] = cap.get("examples", [])
  if "efficiency" in results:
    out["efficiency"] = results["efficiency"]
  if "zero_shot" in results:  # {"top1", "top5", "per_class", "num_images", "num_templates"}.
    out["zero_shot"] = results["zero_shot"]
  by = _by_complexity(results)
  if by:
    out["by_complexity"] = by
  return out


def _by_complexity(results: dict[str, Any]) -> dict[str, Any]:
  """{group: {"retrieval": {..., "num_images"}, "captioning": {..., "num_images"}}} from the evaluators.

  Each task counts its own images (captioning may score only the first evals.captioning.max_images).
  """
  by: dict[str, Any] = {}
  for task, keys in (("retrieval", RETRIEVAL_KEYS), ("captioning", CAPTION_KEYS)):
    for group, m in results.get(task, {}).get("by_complexity", {}).items():
      by.setdefault(group, {})[task] = {**{k: float(m[k]) for k in keys if k in m}, "num_images": m["num_images"]}
  return by


def write(workdir: str, metrics: dict[str, Any]) -> str:
  path = os.path.join(workdir, "metrics.json")
  if jax.process_index() == 0:
    with open(path + ".tmp", "w") as f:
      json.dump(metrics, f, indent=2)
    os.replace(path + ".tmp", path)
  return path


def table(metrics: dict[str, Any]) -> str:
  """A small plain-text table of the headline numbers."""
  rows = [("test images", f"{metrics.get('num_test_images')}")]
  for k, v in metrics.get("retrieval", {}).items():
    if k in RETRIEVAL_KEYS:
      rows.append((f"retrieval {k} (%)", f"{v:.2f}"))
  for k, v in metrics.get("captioning", {}).items():
    rows.append((f"captioning {k}", f"{v:.4f}"))
  zs = metrics.get("zero_shot")
  if zs:
    top5 = "n/a" if zs.get("top5") is None else f"{zs['top5']:.2f}"  # None with <= 5 classes.
    rows.append(("zero-shot top-1 / top-5 (%)", f"{zs['top1']:.2f} / {top5}"))
  eff = metrics.get("efficiency", {})
  if eff:
    rows.append(("tokens / image", f"{eff['tokens_per_image']:.1f}"))
    rows.append(("encoder GFLOPs / image", f"{eff['encoder_gflops_per_image']:.3f}"))
    rows.append(("bucket histogram", " ".join(f"{r}px:{n}" for r, n in zip(eff["resolutions"], eff["histogram"]))))
  for group, m in metrics.get("by_complexity", {}).items():
    parts = [f"t2i R@10 {m['retrieval']['t2i_R@10']:.2f}" if "retrieval" in m else "",
             f"CIDEr-D {m['captioning']['CIDEr-D']:.4f}" if "captioning" in m else ""]
    rows.append((f"{group} third of the images", "  ".join(p for p in parts if p)))
  width = max(len(r[0]) for r in rows)
  lines = [f"{'metric'.ljust(width)} | value", f"{'-' * width}-+-{'-' * 12}"]
  lines += [f"{k.ljust(width)} | {v}" for k, v in rows]
  for ex in metrics.get("examples", [])[:3]:
    lines.append(f"\n[{ex['image_id']}] prediction: {ex['prediction']}\n    reference: {ex['references'][0]}")
  return "\n".join(lines)


def comparison_table(metrics: dict[str, Any]) -> str:
  """The same weights served two ways (metrics["at_largest"] vs metrics): one row each, as markdown."""
  rows = [("every image at the largest bucket", metrics["at_largest"]), ("DRIS at serving", metrics)]
  head = ("| served | tokens / image | encoder GFLOPs / image | t2i R@10 | mR | CIDEr-D | BLEU-4 |\n"
          "|---|---|---|---|---|---|---|")
  lines = [head]
  for name, m in rows:
    eff, ret, cap = m.get("efficiency", {}), m.get("retrieval", {}), m.get("captioning", {})
    cells = [f"{eff['tokens_per_image']:.1f}" if eff else "-",
             f"{eff['encoder_gflops_per_image']:.4f}" if eff else "-",
             f"{ret['t2i_R@10']:.2f}" if ret else "-", f"{ret['mR']:.2f}" if ret else "-",
             f"{cap['CIDEr-D']:.3f}" if cap else "-", f"{cap['BLEU-4']:.3f}" if cap else "-"]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def to_tensorboard(logdir: str, metrics: dict[str, Any]) -> None:
  """The final metrics as scalars under "final/" and the example captions as a text summary."""
  from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  step = int(metrics.get("step", 0))
  with SummaryWriter(logdir) as tb:
    for task in ("retrieval", "captioning", "zero_shot"):
      for k, v in metrics.get(task, {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
          tb.add_scalar(f"final/{task}/{k.replace('@', '_')}", v, step)  # TensorBoard tags have no "@".
    eff = metrics.get("efficiency", {})
    for k in ("tokens_per_image", "encoder_gflops_per_image"):
      if k in eff:
        tb.add_scalar(f"final/efficiency/{k}", eff[k], step)
    examples = metrics.get("examples", [])
    if examples:
      lines = ["| image | prediction | first reference |", "|---|---|---|"]
      lines += [f"| {e.get('image_id', '')} | {e.get('prediction', '')} | {(e.get('references') or [''])[0]} |"
                for e in examples]
      tb.add_text("final/example_captions", "\n".join(lines), step)
