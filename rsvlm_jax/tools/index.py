r"""Search your own images: build an embedding index of folders, add to it, query it by text or by image.

  python -m rsvlm_jax.tools.index build --model DIR --images DIR_OR_GLOB --out INDEX
  python -m rsvlm_jax.tools.index add   --index INDEX --images DIR_OR_GLOB
  python -m rsvlm_jax.tools.index query --index INDEX (--text "..." | --image FILE) --k 10 --out results.json \
      [--grid results.png] [--faiss]

--model is anything `rsvlm_jax.load` takes (a trained workdir or a converted open_clip directory). --images is a
folder (searched recursively for .jpg .jpeg .png .tif .tiff .bmp .webp), a quoted glob such as 'scenes/**/*.tif',
or several of them. `add` embeds only files not yet in the manifest, with the model that built the index (another
model, or the same directory after more training, is refused). Unreadable images are skipped, each named in the
log, counted in the summary line and listed in INDEX/index.json under "skipped"; the exit status is 0 unless no
image could be embedded. The INDEX layout is described in rsvlm_jax/retrieval_index/store.py.

`query` writes {"query": {"text"|"image"}, "k", "index", "model", "search", "results": [{"rank", "path", "score"}]}
(score: cosine similarity), and with --grid a PNG contact sheet of the hits. Search is exact: a chunked jit'd
matmul + top-k in JAX, or faiss-cpu's IndexFlatIP with --faiss (pip install faiss-cpu==1.15.1).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any, Sequence

from rsvlm_jax.retrieval_index import embed
from rsvlm_jax.retrieval_index import search
from rsvlm_jax.retrieval_index import store as store_lib


class NothingEmbedded(RuntimeError):
  """No image of --images could be embedded."""


def list_images(specs: Sequence[str]) -> list[str]:
  """Folders and globs -> sorted unique absolute file paths; a spec matching nothing is an error naming it."""
  from rsvlm_jax.data import image_io  # pylint: disable=g-import-not-at-top
  found = []
  for spec in specs:
    try:
      found += image_io.expand_images(spec)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"--images {spec}: no image files there ({e})") from e
  return sorted(dict.fromkeys(os.path.abspath(p) for p in found))


def _load_model(directory: str):
  import rsvlm_jax  # pylint: disable=g-import-not-at-top
  return rsvlm_jax.load(directory)


def _open_with_model(index_dir: str, model_dir: str | None):
  """The index and the model that built it (refusing --model if it names another one)."""
  store = store_lib.IndexStore.open(index_dir)
  if model_dir and os.path.abspath(os.path.expanduser(model_dir)) != store.identity["model"]:
    raise ValueError(f"--model {model_dir}: {store.directory} was built with {store.identity['model']}; an index "
                     "holds one model's embeddings (build a new index for this model)")
  model = _load_model(store.identity["model"])
  store.check_model(store_lib.model_identity(model))
  return store, model


def build(model_dir: str, images: Sequence[str], out: str, *, batch_size: int = 32, shard_rows: int = 65536,
          overwrite: bool = False, log_every: float = 5.0) -> embed.Summary:
  """Creates INDEX `out` from the images of `images` with the model in `model_dir`."""
  paths = list_images(images)
  model = _load_model(model_dir)
  existed = os.path.exists(out)
  store = store_lib.IndexStore.create(out, identity=store_lib.model_identity(model),
                                      embed_dim=int(model.model.embed_dim), resolution=int(model.resolution),
                                      overwrite=overwrite)
  embed.log_stderr(f"Embedding {len(paths)} image(s) with {model_dir} at {model.resolution} px into {store.directory}")
  summary = embed.embed_into(store, model, paths, batch_size=batch_size, shard_rows=shard_rows, log_every=log_every)
  if summary.added == 0:
    if not existed:
      shutil.rmtree(store.directory)
    raise NothingEmbedded(f"No image could be embedded: all {len(summary.skipped)} file(s) of --images were "
                          "unreadable (see the log above)")
  return summary


def add(index_dir: str, images: Sequence[str], *, model_dir: str | None = None, batch_size: int = 32,
        shard_rows: int = 65536, log_every: float = 5.0) -> embed.Summary:
  """Embeds the images of `images` that INDEX does not hold yet, with the model that built it."""
  paths = list_images(images)
  store, model = _open_with_model(index_dir, model_dir)
  summary = embed.embed_into(store, model, paths, batch_size=batch_size, shard_rows=shard_rows, log_every=log_every)
  if summary.added == 0 and summary.skipped:
    raise NothingEmbedded(f"No image could be embedded: all {len(summary.skipped)} new file(s) were unreadable "
                          "(see the log above)")
  return summary


def query(index_dir: str, *, text: str | None = None, image: str | None = None, k: int = 10,
          out: str | None = None, grid: str | None = None, use_faiss: bool = False,
          chunk_rows: int = search.CHUNK_ROWS) -> dict[str, Any]:
  """Top-k hits of a text or an image in INDEX; writes results.json (`out`) and the contact sheet (`grid`)."""
  if (text is None) == (image is None):
    raise ValueError("query needs exactly one of --text and --image")
  if k < 1:
    raise ValueError(f"--k must be at least 1, got {k}")
  if use_faiss:
    search.import_faiss()  # Fails now, before the model is loaded.
  store, model = _open_with_model(index_dir, None)
  if store.count == 0:
    raise ValueError(f"{store.directory} holds no images")
  if text is not None:
    q, spec = model.encode_texts([text]), {"text": text}
  else:
    q, spec = model.encode_images([image]), {"image": os.path.abspath(image)}
  t0 = time.perf_counter()
  searcher = (search.FaissSearch(store.blocks(), store.embed_dim) if use_faiss
              else search.ExactSearch(store.blocks(), store.embed_dim, chunk_rows=chunk_rows))
  scores, ids = searcher.search(q, k)
  paths = store.paths()
  hits = [{"rank": r + 1, "path": paths[int(i)], "score": float(s)} for r, (s, i) in enumerate(zip(scores[0], ids[0]))]
  result = {"query": spec, "k": int(k), "index": store.directory, "model": store.identity["model"],
            "search": "faiss IndexFlatIP" if use_faiss else "exact (JAX, chunked)",
            "search_seconds": round(time.perf_counter() - t0, 4), "results": hits}
  if out:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1, ensure_ascii=False)
  if grid:
    from rsvlm_jax.retrieval_index import contact_sheet  # pylint: disable=g-import-not-at-top
    title = f"text: {text}" if text is not None else f"image: {os.path.basename(image)}"
    os.makedirs(os.path.dirname(os.path.abspath(grid)), exist_ok=True)
    contact_sheet.render(hits, title=title).save(grid)
  return result


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m rsvlm_jax.tools.index", description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = p.add_subparsers(dest="command", required=True)
  tuning = argparse.ArgumentParser(add_help=False)
  tuning.add_argument("--batch_size", type=int, default=32, help="Images per encoder batch.")
  tuning.add_argument("--shard_rows", type=int, default=65536,
                      help="Commit a shard every this many images (an interrupted build resumes with add).")
  tuning.add_argument("--log_every", type=float, default=5.0, help="Seconds between progress lines.")
  b = sub.add_parser("build", parents=[tuning], help="Create an index of images with a model.")
  b.add_argument("--model", required=True, help="Trained workdir or converted open_clip directory.")
  b.add_argument("--images", required=True, nargs="+", help="Folder(s) or quoted glob(s).")
  b.add_argument("--out", required=True, help="INDEX directory to create.")
  b.add_argument("--overwrite", action="store_true", help="Replace an existing index at --out.")
  a = sub.add_parser("add", parents=[tuning], help="Embed the images an index does not hold yet.")
  a.add_argument("--index", required=True, help="INDEX directory.")
  a.add_argument("--images", required=True, nargs="+", help="Folder(s) or quoted glob(s).")
  a.add_argument("--model", default=None, help="Optional: must be the model that built the index.")
  q = sub.add_parser("query", help="Top-k images for a text or an image.")
  q.add_argument("--index", required=True, help="INDEX directory.")
  what = q.add_mutually_exclusive_group(required=True)
  what.add_argument("--text", help="Query text.")
  what.add_argument("--image", help="Query image file.")
  q.add_argument("--k", type=int, default=10, help="Number of hits.")
  q.add_argument("--out", default="results.json", help="Results JSON to write.")
  q.add_argument("--grid", default=None, help="Also write a PNG contact sheet of the hits.")
  q.add_argument("--faiss", action="store_true", help="Search with faiss-cpu IndexFlatIP (must be installed).")
  q.add_argument("--chunk_rows", type=int, default=search.CHUNK_ROWS, help="Rows per chunk of the exact JAX search.")
  return p


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  try:
    if args.command == "build":
      summary = build(args.model, args.images, args.out, batch_size=args.batch_size, shard_rows=args.shard_rows,
                      overwrite=args.overwrite, log_every=args.log_every)
      print(summary.line(os.path.abspath(args.out)), flush=True)
    elif args.command == "add":
      summary = add(args.index, args.images, model_dir=args.model, batch_size=args.batch_size,
                    shard_rows=args.shard_rows, log_every=args.log_every)
      print(summary.line(os.path.abspath(args.index)), flush=True)
    else:
      result = query(args.index, text=args.text, image=args.image, k=args.k, out=args.out, grid=args.grid,
                     use_faiss=args.faiss, chunk_rows=args.chunk_rows)
      top = result["results"][0]
      print(f"Wrote {args.out} ({len(result['results'])} hits; #1 {top['path']} score {top['score']:.4f})"
            + (f" and {args.grid}" if args.grid else ""), flush=True)
  except NothingEmbedded as e:
    print(f"index {args.command}: {e}", file=sys.stderr)
    return 1
  except (FileNotFoundError, FileExistsError, ValueError, ImportError) as e:
    print(f"index {args.command}: error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
