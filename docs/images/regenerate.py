r"""Regenerates the README's pictures from a demo run, through the documented commands.

  python docs/images/regenerate.py --workdir workdir/demo --data_dir data [--out docs/images]

Exports the synthetic test split as PNG files (16 for the caption sheet, all 300 for the index), then runs
`tools.caption --sheet`, `tools.index build` + `query --grid` and `tools.zero_shot` on the run, and copies the run's
training curves. The zero-shot JSON goes to docs/zero_shot_synthetic.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

QUERY = "an aerial view of a harbor with ships"


def export_test_split(data_dir: str, folder: str, limit: int | None = None) -> None:
  """Writes the test images of synthetic_scenes/demo as NNN.png (their stored bytes decoded by PIL)."""
  import io  # pylint: disable=g-import-not-at-top
  import rsvlm_datasets  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rsvlm_datasets.import_builder("synthetic_scenes/demo")
  builder = tfds.builder("synthetic_scenes/demo", data_dir=data_dir)
  source = builder.as_data_source(split="test", decoders={"image": tfds.decode.SkipDecoding()})
  os.makedirs(folder, exist_ok=True)
  for i in range(len(source) if limit is None else min(limit, len(source))):
    Image.open(io.BytesIO(source[i]["image"])).save(os.path.join(folder, f"{i:03d}.png"))


def _run(*args: str) -> None:
  print("+", " ".join(args), flush=True)
  subprocess.run([sys.executable, "-m", *args], check=True)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", required=True, help="A finished demo run.")
  p.add_argument("--data_dir", required=True, help="Where synthetic_scenes/demo is built.")
  p.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)), help="Folder of the PNGs.")
  a = p.parse_args()
  docs = os.path.dirname(os.path.abspath(a.out))
  os.makedirs(a.out, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    sheet_images, all_images = os.path.join(tmp, "sheet"), os.path.join(tmp, "all")
    export_test_split(a.data_dir, sheet_images, limit=16)
    export_test_split(a.data_dir, all_images)
    _run("rsvlm_jax.tools.caption", f"--model={a.workdir}", f"--images={sheet_images}",
         f"--out={os.path.join(tmp, 'captions.jsonl')}", f"--sheet={os.path.join(a.out, 'caption_sheet.png')}")
    index = os.path.join(tmp, "test.idx")
    _run("rsvlm_jax.tools.index", "build", f"--model={a.workdir}", f"--images={all_images}", f"--out={index}")
    _run("rsvlm_jax.tools.index", "query", f"--index={index}", f"--text={QUERY}", "--k=10",
         f"--grid={os.path.join(a.out, 'index_query.png')}")
    _run("rsvlm_jax.tools.zero_shot", f"--model={a.workdir}", "--dataset=tfds:synthetic_scenes/demo",
         f"--data_dir={a.data_dir}", "--label_key=scene", f"--out={os.path.join(docs, 'zero_shot_synthetic.json')}",
         f"--confusion={os.path.join(a.out, 'zero_shot_confusion.png')}")
  shutil.copy(os.path.join(a.workdir, "training_curves.png"), os.path.join(a.out, "training_curves.png"))


if __name__ == "__main__":
  main()
