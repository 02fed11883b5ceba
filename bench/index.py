r"""Image-index search: our exact chunked JAX search against faiss-cpu IndexFlatIP (as installed and as a user who
tunes it would run it) and a plain NumPy matmul + argpartition, on random unit embeddings, against the matmul peak.

  python -m bench.index --out FILE [--sizes 10000,100000,1000000] [--dim 512] [--queries 100]

For each size N: N random unit vectors (float32 [N, dim], what `tools/index build` stores) and `queries` random
unit queries. Implementations ("impl"), in the same process:
  jax_exact_chunked    ours (rsvlm_jax/retrieval_index/search.py ExactSearch);
  faiss_flat_ip        faiss IndexFlatIP with faiss's defaults: distance_compute_blas_threshold 128000 compares
                       with queries x dim, so batches under 250 queries of 512-d take faiss's non-BLAS loop;
  faiss_flat_ip_tuned  the same index with distance_compute_blas_threshold = 1 (BLAS for every batch) and
                       omp_set_num_threads(cpu count): what a user who tunes faiss runs;
  faiss_flat_ip_tuned_1thread   the same with omp_set_num_threads(1) (BLAS keeps its own threads): on a busy
                       machine faiss's OpenMP threads around BLAS compete with it and with other work;
  numpy_matmul_topk    queries @ rows.T (OpenBLAS, blocks of 65536 rows) + argpartition top k.
Per implementation:
  build_s             seconds to make the rows searchable (ours: fixed-size chunks onto the device;
                      faiss: IndexFlatIP.add; numpy: none), from rows already in memory;
  query_ms_per_query  one batch of all queries (after a warm-up call that compiles), best of --repeats, per query;
  query_ms_single     one query alone (the `tools/index query` case), best of --repeats;
  gflops_batch, gflops_single   2 N dim Q / time: the matmul work per second of the batch and of one query;
  fraction_of_peak    gflops_batch / matmul_peak.best_gflops (the best of a jit'd JAX and a NumPy float32 matmul,
                      measured in the same run: see "matmul_peak");
  recall_at_10        share of the reference top 10 that the implementation returns (exact search: 1.0), where
                      the reference is faiss when importable, else a NumPy brute force ("reference" names it);
  recall_at_10_numpy  the same against the NumPy brute force (float32 BLAS), for every implementation.
faiss rows appear only when faiss is importable (pip install faiss-cpu==1.15.1). The machine's load average at the
start and end is recorded: on a shared machine the timings are only as good as it was quiet.
"""
from __future__ import annotations

import os
import time

import numpy as np
from absl import app
from absl import flags

from bench import common
from rsvlm_jax.retrieval_index import search

_OUT = flags.DEFINE_string("out", "bench_results/index.json", "Output JSON.")
_SIZES = flags.DEFINE_list("sizes", ["10000", "100000", "1000000"], "Index sizes (rows).")
_DIM = flags.DEFINE_integer("dim", 512, "Embedding width.")
_QUERIES = flags.DEFINE_integer("queries", 100, "Queries per batch.")
_K = flags.DEFINE_integer("k", 10, "Hits per query (recall is measured at 10).")
_CHUNK = flags.DEFINE_integer("chunk_rows", search.CHUNK_ROWS, "Rows per chunk of our search.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats (the best is reported).")


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
  x = rng.standard_normal((n, dim), dtype=np.float32)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  return x


def numpy_top_k(db: np.ndarray, queries: np.ndarray, k: int, block: int = 65536) -> np.ndarray:
  """Brute-force top-k row ids (float32 BLAS), in blocks to bound memory."""
  best_s = np.full((len(queries), 0), -np.inf, np.float32)
  best_i = np.zeros((len(queries), 0), np.int64)
  for start in range(0, len(db), block):
    s = queries @ db[start:start + block].T
    part = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
    best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], 1)
    best_i = np.concatenate([best_i, part + start], 1)
    keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
    best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
  return best_i


def recall_at(found: np.ndarray, reference: np.ndarray, k: int = 10) -> float:
  return float(np.mean([len(set(f[:k]) & set(r[:k])) / k for f, r in zip(found, reference)]))


def best_time(fn, repeats: int) -> float:
  fn()  # Warm-up (compiles ours).
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return min(times)


class NumpySearch:
  """The plain baseline: a float32 matmul per block of rows and argpartition (numpy_top_k)."""

  def __init__(self, db: np.ndarray):
    self.db = db

  def search(self, queries: np.ndarray, k: int):
    return None, numpy_top_k(self.db, queries, k)


FAISS_IMPLS = ("faiss_flat_ip", "faiss_flat_ip_tuned", "faiss_flat_ip_tuned_1thread")


def faiss_settings(impl: str, default_threshold: int, default_threads: int) -> dict:
  """Sets faiss's BLAS threshold and OpenMP threads for `impl` (one of FAISS_IMPLS); what was set."""
  faiss = search.import_faiss()
  tuned = impl != "faiss_flat_ip"
  faiss.cvar.distance_compute_blas_threshold = 1 if tuned else default_threshold
  faiss.omp_set_num_threads(1 if impl.endswith("1thread") else (os.cpu_count() or 1) if tuned else default_threads)
  return {"distance_compute_blas_threshold": int(faiss.cvar.distance_compute_blas_threshold),
          "omp_threads": int(faiss.omp_get_max_threads())}


def measure(impl: str, db: np.ndarray, queries: np.ndarray, k: int) -> tuple[dict, np.ndarray]:
  t0 = time.perf_counter()
  if impl.startswith("faiss"):
    index = search.FaissSearch(db)
  elif impl == "numpy_matmul_topk":
    index = NumpySearch(db)
  else:
    index = search.ExactSearch(db, chunk_rows=_CHUNK.value)
    import jax  # pylint: disable=g-import-not-at-top
    jax.block_until_ready([c for c, _, _ in index.chunks])
  build_s = time.perf_counter() - t0
  _, ids = index.search(queries, k)
  batch = best_time(lambda: index.search(queries, k), _REPEATS.value)
  single = best_time(lambda: index.search(queries[:1], k), _REPEATS.value)
  flops = 2.0 * db.shape[0] * db.shape[1]  # Per query.
  row = {"size": len(db), "dim": db.shape[1], "impl": impl, "build_s": round(build_s, 4),
         "query_ms_per_query": round(1e3 * batch / len(queries), 4), "query_ms_single": round(1e3 * single, 3),
         "queries": len(queries), "k": k, "gflops_batch": round(flops * len(queries) / batch / 1e9, 2),
         "gflops_single": round(flops / single / 1e9, 2)}
  return row, ids


def matmul_peak(dim: int, queries: int, chunk_rows: int) -> dict:
  """The float32 matmul peak of this machine, as JAX (XLA, jit) and NumPy (BLAS) reach it: the best GFLOP/s over
  a square 2048 matmul and the search's own shape (queries x dim @ dim x chunk_rows)."""
  shapes = ((2048, 2048, 2048), (queries, dim, chunk_rows))
  jax_peak = common.matmul_peak(shapes=shapes, min_time=1.0)
  numpy_by_shape = {}
  rng = np.random.default_rng(0)
  for m, kk, n in shapes:
    a, b = rng.standard_normal((m, kk), dtype=np.float32), rng.standard_normal((kk, n), dtype=np.float32)
    numpy_by_shape[f"{m}x{kk}x{n}"] = round(2.0 * m * kk * n / best_time(lambda: a @ b, 5) / 1e9, 2)  # pylint: disable=cell-var-from-loop
  jax_by_shape = {s: round(g, 2) for s, g in jax_peak["by_shape"].items()}
  return {"best_gflops": max(max(jax_by_shape.values()), max(numpy_by_shape.values())),
          "jax_gflops": max(jax_by_shape.values()), "numpy_gflops": max(numpy_by_shape.values()),
          "jax_by_shape": jax_by_shape, "numpy_by_shape": numpy_by_shape, "dtype": "float32"}


def main(argv):
  del argv
  load_start, faiss_threads = list(os.getloadavg()), None  # Other work on the machine skews the timings.
  impls = ["jax_exact_chunked", "numpy_matmul_topk"]
  try:
    faiss = search.import_faiss()
    faiss_threads, default_threshold = faiss.omp_get_max_threads(), int(faiss.cvar.distance_compute_blas_threshold)
    impls += list(FAISS_IMPLS)
  except ImportError as e:
    print(f"faiss rows left out: {e}")
  peak = matmul_peak(_DIM.value, _QUERIES.value, _CHUNK.value)
  print({"matmul_peak": peak}, flush=True)
  rows = []
  for size in (int(s) for s in _SIZES.value):
    rng = np.random.default_rng(size)
    db, queries = unit_rows(rng, size, _DIM.value), unit_rows(rng, _QUERIES.value, _DIM.value)
    brute = numpy_top_k(db, queries, 10)
    found = {}
    for impl in impls:
      settings = faiss_settings(impl, default_threshold, faiss_threads) if impl in FAISS_IMPLS else None
      row, found[impl] = measure(impl, db, queries, max(_K.value, 10))
      row["fraction_of_peak"] = round(row["gflops_batch"] / peak["best_gflops"], 3)
      if settings:
        row["faiss_settings"] = settings
      row["recall_at_10_numpy"] = recall_at(found[impl], brute)
      rows.append(row)
    reference = "faiss_flat_ip" if "faiss_flat_ip" in found else "numpy"
    for row in rows[-len(impls):]:
      row["reference"] = reference
      row["recall_at_10"] = recall_at(found[row["impl"]], found.get(reference, brute))
      print(row, flush=True)
    del db
  if any(row["fraction_of_peak"] > 1 for row in rows):
    print("warning: a row ran above the matmul peak measured at the start: the machine's load changed during the "
          "run (see load_average_start_end); compare rows of a quiet run only", flush=True)
  common.write_json(_OUT.value, {"sizes": [int(s) for s in _SIZES.value], "dim": _DIM.value,
                                 "queries": _QUERIES.value, "chunk_rows": _CHUNK.value, "rows": rows,
                                 "load_average_start_end": [load_start, list(os.getloadavg())],
                                 "faiss_threads": faiss_threads, "matmul_peak": peak})


if __name__ == "__main__":
  app.run(main)
