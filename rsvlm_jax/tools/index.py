r"""Search your own images: build an embedding index of folders, add to it, query it by text or by image.

  python -m rsvlm_jax.tools.index build --model DIR --images DIR_OR_GLOB --out INDEX
  python -m rsvlm_jax.tools.index add   --index INDEX --images DIR_OR_GLOB
  python -m rsvlm_jax.tools.index query --index INDEX --text "..." ["..." ...] [--image FILE ...] --k 10 \
      [--out results.json] [--grid results.png] [--faiss]
  python -m rsvlm_jax.tools.index prune --index INDEX [--dry_run]

--model is anything `rsvlm_jax.load` takes (a trained workdir or a converted open_clip directory). --images is a
folder (searched recursively for .jpg .jpeg .png .tif .tiff .bmp .webp), a quoted glob such as 'scenes/**/*.tif',
or several of them; files are told apart by real path (symlinks resolved). `add` embeds only files not yet in the
manifest, with the model that built the index (another model, or the same directory after more training, is
refused); a file whose bytes equal an indexed file that is gone from its old path (a moved folder) takes over that
row instead of adding a second one. `prune` drops the rows whose file is gone. Unreadable images are skipped, each
named in the log, counted in the summary line and listed in INDEX/index.json under "skipped"; the exit status is 0
unless no image could be embedded. One writer at a time: a second build/add/prune on the same index is refused
(exit 2) naming the one that holds it. The INDEX layout is described in rsvlm_jax/retrieval_index/store.py.

`query` embeds every --text and --image (texts first) with one model load, prints each one's top k as a table and
warns when hits point to files that are gone. --out writes {"k", "index", "model", "search", "search_seconds",
"queries": [{"query": {"text"|"image"}, "results": [{"rank", "path", "score"[, "missing": true]}],
"missing_hits"}]} (score: cosine similarity), with one query also "query", "results" and "missing_hits" at the top
level; --grid a PNG contact sheet of the hits (one band per query). Search is exact: a chunked jit'd matmul + top-k
in JAX, or faiss-cpu's IndexFlatIP with --faiss (pip install faiss-cpu==1.15.1).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any, Callable, Sequence

from absl import flags

from rsvlm_jax.retrieval_index import embed
from rsvlm_jax.retrieval_index import lock as lock_lib
from rsvlm_jax.retrieval_index import search
from rsvlm_jax.retrieval_index import store as store_lib
from rsvlm_jax.runtime import cli

# This command's flags only (runtime/cli.py): importing it defines no global flag. One set for the four
# subcommands; each takes the flags COMMAND_FLAGS lists. A list flag takes several values after it (--text 'a' 'b')
# or repeated (--text 'a' --text 'b').
FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "build: trained workdir or converted open_clip directory; add (optional): must be "
                    "the model that built the index.", flag_values=FLAGS)
flags.DEFINE_multi_string("images", [], "build, add: folder(s) or quoted glob(s).", flag_values=FLAGS)
flags.DEFINE_string("out", None, "build: the INDEX directory to create; query: also write the results as JSON to "
                    "this file.", flag_values=FLAGS)
flags.DEFINE_bool("overwrite", False, "build: replace an existing index at --out.", flag_values=FLAGS)
flags.DEFINE_string("index", None, "add, query, prune: the INDEX directory.", flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 32, "build, add: images per encoder batch (at least 1).", flag_values=FLAGS)
flags.DEFINE_integer("shard_rows", 65536, "build, add: commit a shard every this many images, at least 1 (an "
                     "interrupted build resumes with add).", flag_values=FLAGS)
flags.DEFINE_float("log_every", 5.0, "build, add: seconds between progress lines.", flag_values=FLAGS)
flags.DEFINE_multi_string("text", [], "query: query text(s): --text 'a harbor' 'a forest' or --text repeated.",
                          flag_values=FLAGS)
flags.DEFINE_multi_string("image", [], "query: query image file(s).", flag_values=FLAGS)
flags.DEFINE_integer("k", 10, "query: number of hits per query.", flag_values=FLAGS)
flags.DEFINE_string("grid", None, "query: also write a PNG contact sheet of the hits.", flag_values=FLAGS)
flags.DEFINE_bool("faiss", False, "query: search with faiss-cpu IndexFlatIP (must be installed).", flag_values=FLAGS)
flags.DEFINE_integer("chunk_rows", search.CHUNK_ROWS, "query: rows per chunk of the exact JAX search.",
                     flag_values=FLAGS)
flags.DEFINE_bool("dry_run", False, "prune: only count and name the rows whose file is gone.", flag_values=FLAGS)

_TUNING = ("batch_size", "shard_rows", "log_every")
COMMAND_FLAGS = {"build": ("model", "images", "out", "overwrite", *_TUNING),
                 "add": ("index", "images", "model", *_TUNING),
                 "query": ("index", "text", "image", "k", "out", "grid", "faiss", "chunk_rows"),
                 "prune": ("index", "dry_run")}
REQUIRED = {"build": ("model", "images", "out"), "add": ("index", "images"), "query": ("index",),
            "prune": ("index",)}


class NothingEmbedded(RuntimeError):
  """No image of --images could be embedded."""


def list_images(specs: Sequence[str]) -> list[str]:
  """Folders and globs -> sorted unique real file paths; a spec matching nothing is an error naming it."""
  from rsvlm_jax.data import image_io  # pylint: disable=g-import-not-at-top
  found = []
  for spec in specs:
    try:
      found += image_io.expand_images(spec)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"--images {spec}: no image files there ({e})") from e
  return sorted(dict.fromkeys(os.path.realpath(p) for p in found))


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
  """Creates INDEX `out` from the images of `images` with the model in `model_dir` (holding the index lock)."""
  embed.check_tuning(batch_size, shard_rows, log_every)
  directory = store_lib.check_new(out, overwrite)
  paths = list_images(images)
  fresh = not os.path.exists(directory)
  os.makedirs(directory, exist_ok=True)
  store = None
  with lock_lib.IndexLock(directory):
    fresh = fresh and os.listdir(directory) == [lock_lib.LOCK_FILE]  # Nobody else built here meanwhile.
    try:
      model = _load_model(model_dir)
      store = store_lib.IndexStore.create(directory, identity=store_lib.model_identity(model),
                                          embed_dim=int(model.model.embed_dim), resolution=int(model.resolution),
                                          overwrite=overwrite)
      embed.log_stderr(f"Embedding {len(paths)} image(s) with {model_dir} at {model.resolution} px into "
                       f"{store.directory}")
      summary = embed.embed_into(store, model, paths, batch_size=batch_size, shard_rows=shard_rows,
                                 log_every=log_every)
      if summary.added == 0:
        raise NothingEmbedded(f"No image could be embedded: all {len(summary.skipped)} file(s) of --images were "
                              "unreadable (see the log above)")
    except BaseException:
      if fresh and (store is None or store.count == 0):  # Leave no empty index behind.
        shutil.rmtree(directory, ignore_errors=True)
      raise
  return summary


def _check_index(index_dir: str) -> str:
  """The absolute path of INDEX, refused unless it is one (before the lock file is made in it)."""
  return store_lib.IndexStore.open(index_dir).directory


def add(index_dir: str, images: Sequence[str], *, model_dir: str | None = None, batch_size: int = 32,
        shard_rows: int = 65536, log_every: float = 5.0) -> embed.Summary:
  """Embeds the images of `images` that INDEX does not hold yet, with the model that built it (holding the lock)."""
  embed.check_tuning(batch_size, shard_rows, log_every)
  directory = _check_index(index_dir)
  paths = list_images(images)
  with lock_lib.IndexLock(directory):
    store, model = _open_with_model(directory, model_dir)
    summary = embed.embed_into(store, model, paths, batch_size=batch_size, shard_rows=shard_rows,
                               log_every=log_every)
  if summary.added == 0 and summary.skipped:
    raise NothingEmbedded(f"No image could be embedded: all {len(summary.skipped)} new file(s) were unreadable "
                          "(see the log above)")
  return summary


def prune(index_dir: str, *, dry_run: bool = False) -> dict[str, Any]:
  """Drops the rows of INDEX whose file is gone (and such "skipped" entries); {"gone", "remaining", "examples"}."""
  directory = _check_index(index_dir)
  with lock_lib.IndexLock(directory):
    store = store_lib.IndexStore.open(directory)
    gone = [i for i, path in enumerate(store.paths()) if not os.path.exists(path)]
    examples = [store.rows[i]["path"] for i in gone[:3]]
    if gone and len(gone) == store.count:
      raise ValueError(f"{directory}: every one of its {store.count} indexed files is gone (e.g. {examples[0]}); "
                       "nothing pruned. Is their disk mounted? To index them anew, build a new index")
    if gone and not dry_run:
      dropped = set(gone)
      store.rewrite([i for i in range(store.count) if i not in dropped])
      store.set_skipped([s for s in store.meta.get("skipped", []) if os.path.exists(s["path"])])
    return {"gone": len(gone), "remaining": store.count - (len(gone) if dry_run else 0), "examples": examples}


def _as_list(value: str | Sequence[str] | None) -> list[str]:
  return [] if value is None else [value] if isinstance(value, str) else list(value)


def _check_output(path: str, flag: str) -> None:
  """--out/--grid: not a directory, its folder created (as before) and writable; before the model is loaded."""
  if os.path.isdir(path):
    raise cli.UserError(f"{flag}={path} is a directory; give a file name")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  cli.check_output_file(path, flag)


def query(index_dir: str, *, text: str | Sequence[str] | None = None, image: str | Sequence[str] | None = None,
          k: int = 10, out: str | None = None, grid: str | None = None, use_faiss: bool = False,
          chunk_rows: int = search.CHUNK_ROWS, log: Callable[[str], None] = embed.log_stderr) -> dict[str, Any]:
  """Top-k hits of each text and image (texts first) in INDEX; writes the JSON (`out`) and contact sheet (`grid`)."""
  texts, images = _as_list(text), _as_list(image)
  if not texts and not images:
    raise ValueError("query needs at least one --text or --image")
  if k < 1:
    raise ValueError(f"--k must be at least 1, got {k}")
  if chunk_rows < 1:
    raise ValueError(f"--chunk_rows must be at least 1, got {chunk_rows}")
  for path in images:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"--image {path}: no such file")
  for path, flag in ((out, "--out"), (grid, "--grid")):
    if path is not None:
      _check_output(path, flag)
  if use_faiss:
    search.import_faiss()  # Fails now, before the model is loaded.
  store = store_lib.IndexStore.open(index_dir)
  if store.count == 0:
    raise ValueError(f"{store.directory} holds no images")
  model = _load_model(store.identity["model"])
  store.check_model(store_lib.model_identity(model))
  import numpy as np  # pylint: disable=g-import-not-at-top
  vectors = ([model.encode_texts(texts)] if texts else []) + ([model.encode_images(images)] if images else [])
  specs = [{"text": t} for t in texts] + [{"image": os.path.abspath(p)} for p in images]
  t0 = time.perf_counter()
  searcher = (search.FaissSearch(store.blocks(), store.embed_dim) if use_faiss
              else search.ExactSearch(store.blocks(), store.embed_dim, chunk_rows=chunk_rows))
  scores, ids = searcher.search(np.concatenate([np.asarray(v, np.float32) for v in vectors]), k)
  seconds = time.perf_counter() - t0
  paths = store.paths()
  entries = [_hits(spec, s, i, paths) for spec, s, i in zip(specs, scores, ids)]
  result = {"k": int(k), "index": store.directory, "model": store.identity["model"],
            "search": "faiss IndexFlatIP" if use_faiss else "exact (JAX, chunked)",
            "search_seconds": round(seconds, 4), "queries": entries}
  if len(entries) == 1:  # The single-query layout of earlier versions.
    result = {**entries[0], **result}
  missing = [h["path"] for e in entries for h in e["results"] if h.get("missing")]
  if missing:
    log(f"index query: warning: {len(missing)} of {sum(len(e['results']) for e in entries)} hits point to files "
        f"that are gone (moved or deleted since indexing), e.g. {missing[0]}. `index add --index {index_dir} "
        f"--images NEW_FOLDER` points moved files' rows at their new place; `index prune --index {index_dir}` "
        "drops the rows of deleted ones")
  if out:
    with open(out, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1, ensure_ascii=False)
  if grid:
    from rsvlm_jax.retrieval_index import contact_sheet  # pylint: disable=g-import-not-at-top
    sheets = [contact_sheet.render(e["results"], title=_title(e["query"])) for e in entries]
    contact_sheet.stack(sheets).save(grid)
  return result


def _hits(spec: dict[str, str], scores, ids, paths: Sequence[str]) -> dict[str, Any]:
  """One query's entry of the results JSON: its hits, each file checked for existence."""
  hits = []
  for rank, (score, row) in enumerate(zip(scores, ids)):
    hit = {"rank": rank + 1, "path": paths[int(row)], "score": float(score)}
    if not os.path.exists(hit["path"]):
      hit["missing"] = True
    hits.append(hit)
  return {"query": spec, "results": hits, "missing_hits": sum(1 for h in hits if h.get("missing"))}


def _title(spec: dict[str, str]) -> str:
  return f"text: {spec['text']}" if "text" in spec else f"image: {os.path.basename(spec['image'])}"


def format_hits(result: dict[str, Any]) -> str:
  """Each query's hits as a table: rank, score, path (and "(file gone)")."""
  lines = []
  for entry in result["queries"]:
    lines.append(f"{_title(entry['query'])}  ({len(entry['results'])} hits"
                 + (f", {entry['missing_hits']} gone" if entry["missing_hits"] else "") + ")")
    lines.append(f"{'rank':>5}  {'score':>7}  path")
    lines += [f"{h['rank']:>5}  {h['score']:>7.4f}  {h['path']}" + ("  (file gone)" if h.get("missing") else "")
              for h in entry["results"]]
    lines.append("")
  return "\n".join(lines).rstrip("\n")


def main(argv):
  """The subcommand argv[1] with FLAGS; exit status 0, 1 (no image could be embedded) or 2 (bad input)."""
  command = argv[1]
  from rsvlm_jax.runtime import library_logs  # pylint: disable=g-import-not-at-top
  library_logs.quiet_library_logs()
  try:
    with cli.user_errors(f"index {command}", cli.USER_ERRORS + (ImportError, lock_lib.IndexLockedError)):
      _check_flags(command)
      _COMMANDS[command]()
  except NothingEmbedded as e:
    print(f"index {command}: {e}", file=sys.stderr)
    return 1
  return 0


def _check_flags(command: str) -> None:
  """Refuses a flag of another subcommand and a missing required one, naming them."""
  given = [name for name in FLAGS if FLAGS[name].present]
  foreign = [f"--{name}" for name in given if name not in COMMAND_FLAGS[command]]
  if foreign:
    raise cli.UserError(f"{', '.join(foreign)}: not a flag of `index {command}` (its flags: "
                        f"{', '.join('--' + n for n in COMMAND_FLAGS[command])})")
  missing = [f"--{name}" for name in REQUIRED[command] if not FLAGS[name].present]
  if missing:
    raise cli.UserError(f"missing required flag(s) {', '.join(missing)}")


def _build() -> None:
  summary = build(FLAGS.model, FLAGS.images, FLAGS.out, batch_size=FLAGS.batch_size, shard_rows=FLAGS.shard_rows,
                  overwrite=FLAGS.overwrite, log_every=FLAGS.log_every)
  print(summary.line(os.path.abspath(FLAGS.out)), flush=True)


def _add() -> None:
  summary = add(FLAGS.index, FLAGS.images, model_dir=FLAGS.model, batch_size=FLAGS.batch_size,
                shard_rows=FLAGS.shard_rows, log_every=FLAGS.log_every)
  print(summary.line(os.path.abspath(FLAGS.index)), flush=True)


def _prune() -> None:
  done = prune(FLAGS.index, dry_run=FLAGS.dry_run)
  verb = "Would drop" if FLAGS.dry_run else "Dropped"
  print(f"{verb} {done['gone']} row(s) whose file is gone from {os.path.abspath(FLAGS.index)}"
        + (f" (e.g. {done['examples'][0]})" if done["examples"] else "") + f"; {done['remaining']} remain",
        flush=True)


def _query() -> None:
  result = query(FLAGS.index, text=FLAGS.text, image=FLAGS.image, k=FLAGS.k, out=FLAGS.out, grid=FLAGS.grid,
                 use_faiss=FLAGS.faiss, chunk_rows=FLAGS.chunk_rows)
  print(format_hits(result), flush=True)
  wrote = [f for f in (FLAGS.out, FLAGS.grid) if f]
  if wrote:
    print("Wrote " + " and ".join(wrote), flush=True)


_COMMANDS = {"build": _build, "add": _add, "query": _query, "prune": _prune}
COMMANDS = tuple(_COMMANDS)


if __name__ == "__main__":
  cli.run(main, FLAGS, "index", commands=COMMANDS)
