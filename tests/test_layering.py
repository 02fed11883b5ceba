"""Package layering: every import of rsvlm_jax points down an ordered list of layers, and no import cycles.

LAYERS lists the rooms from the bottom up; a module may import its own layer and those below it, never one
above. Within a layer any direction is allowed, but the module graph (every import, at module level or
inside a function) must have no cycle. Modules are parsed, not imported, so imports inside functions count.
`python tests/test_layering.py [ROOT]` prints the structure as JSON (rooms, upward imports, cycles,
function-level imports by reason): the before/after numbers of issue 32.
"""
from __future__ import annotations

import ast
import collections
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "rsvlm_jax"

# Bottom to top: (layer name, module prefixes). A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Shared by everything above: mesh, checkpoints, mixed batches, locks, process zero, progress, the CLI
    # helpers (runtime/cli.py: user errors), token ids, ViT variants, boxes.
    ("runtime", ("rsvlm_jax.runtime", "rsvlm_jax.vit_variants", "rsvlm_jax.token_ids", "rsvlm_jax.distributed",
                 "rsvlm_jax.boxes")),
    ("dris", ("rsvlm_jax.dris",)),  # Serving-time DRIS: scorers, buckets, calibration, policy.
    ("data", ("rsvlm_jax.data",)),
    ("models", ("rsvlm_jax.models",)),
    ("losses", ("rsvlm_jax.losses",)),
    ("evaluate", ("rsvlm_jax.evaluate",)),
    ("config", ("rsvlm_jax.config_schema", "rsvlm_jax.config")),
    ("train", ("rsvlm_jax.train",)),
    ("analysis", ("rsvlm_jax.analysis",)),  # Resolution gains, frontier, scorer fitting.
    ("libraries", ("rsvlm_jax.retrieval_index", "rsvlm_jax.convert")),
    ("entry", ("rsvlm_jax", "rsvlm_jax.loading", "rsvlm_jax.job", "rsvlm_jax.sweep", "rsvlm_jax.main",
               "rsvlm_jax.build_dataset")),
    ("tools", ("rsvlm_jax.tools",)),
]

# Siblings that must not meet even where the order would allow it: (importer, imported) package prefixes.
FORBIDDEN = {
    "rsvlm_jax.train": ("rsvlm_jax.evaluate",),  # The job is where a trainer meets the evaluators.
    "rsvlm_jax.models": ("rsvlm_jax.data",),  # Batches reach a model as arrays and runtime.mixed_batch parts.
}

# (importing module, imported module) pairs allowed for now, each with the reason.
EXCEPTIONS: dict[tuple[str, str], str] = {}

# Third-party modules that are slow to import or optional: importing them inside the function that needs them
# keeps `import rsvlm_jax...` and `--help` fast, and works without them installed.
HEAVY = ("torch", "faiss", "tensorflow", "tensorflow_datasets", "rsvlm_datasets", "tifffile", "safetensors",
         "tensorboardX", "pycocoevalcap", "jax", "optax")


def _within(name: str, package: str) -> bool:
  return name == package or name.startswith(package + ".")


def _module_name(path: str, root: str) -> str:
  rel = os.path.splitext(os.path.relpath(path, root))[0].split(os.sep)
  return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def modules(root: str = ROOT) -> dict[str, str]:
  """{dotted name: path} of every .py file under root/rsvlm_jax."""
  out = {}
  for d, _, files in os.walk(os.path.join(root, PACKAGE)):
    for f in sorted(files):
      if f.endswith(".py"):
        out[_module_name(os.path.join(d, f), root)] = os.path.join(d, f)
  return dict(sorted(out.items()))


def _import_nodes(tree: ast.AST):
  """(node, inside a function) of every import statement or import_module/__import__ call."""
  def walk(node, in_fn):
    for child in ast.iter_child_nodes(node):
      fn = in_fn or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
      if isinstance(child, (ast.Import, ast.ImportFrom, ast.Call)):
        yield child, in_fn
      yield from walk(child, fn)
  yield from walk(tree, False)


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str, bool]]:
  """(line, dotted name, inside a function) of everything `source` (the text of `module`) imports.

  `from a.b import c` yields a.b.c as well as a.b (c may be a module or a name in a.b), relative imports are
  resolved against `module`, and importlib.import_module / __import__ of a constant string count too.
  """
  package = module if is_package else module.rpartition(".")[0]
  out = []
  for node, in_fn in _import_nodes(ast.parse(source)):
    if isinstance(node, ast.Import):
      out += [(node.lineno, a.name, in_fn) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")
        parts = parts[:len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
      out.append((node.lineno, base, in_fn))
      out += [(node.lineno, f"{base}.{a.name}", in_fn) for a in node.names if a.name != "*"]
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
      fn = node.func
      name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
      if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
        out.append((node.lineno, node.args[0].value, in_fn))
  return out


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
  """(line, dotted name) of everything `source` imports, anywhere in it (see `imports`)."""
  return [(line, name) for line, name, _ in imports(source, module, is_package)]


def _resolve(name: str, known) -> str | None:
  """The module of `known` that `name` (a module, or a name inside one) lives in, or None."""
  while name:
    if name in known:
      return name
    name = name.rpartition(".")[0]
  return None


def graph(root: str = ROOT) -> dict[str, list[tuple[int, str, bool]]]:
  """{module: [(line, imported rsvlm_jax module, inside a function)]} of every module of the package.

  `from a.b import c` counts once: as a.b.c when that is a module, else as a.b (c is a name in it).
  """
  mods = modules(root)
  out = {}
  for module, path in mods.items():
    with open(path) as f:
      found = imports(f.read(), module, os.path.basename(path) == "__init__.py")
    edges = set()
    for line, name, in_fn in found:
      if any(n.startswith(name + ".") for ln, n, _ in found if ln == line):
        continue  # `from a.b import c` is a.b.c (module or name), not a.b as well.
      target = _resolve(name, mods)
      if target and target != module:
        edges.add((line, target, in_fn))
    out[module] = sorted(edges)
  return out


def layer_of(module: str) -> int | None:
  """Index in LAYERS of `module`'s layer (longest matching prefix), or None when it has none."""
  best, index = "", None
  for i, (_, prefixes) in enumerate(LAYERS):
    for p in prefixes:
      if _within(module, p) and len(p) > len(best):
        best, index = p, i
  return index


def upward_imports(g: dict[str, list[tuple[int, str, bool]]], exceptions=None) -> list[str]:
  """Every import pointing up LAYERS (or across a FORBIDDEN pair), as 'module:line imports X (why)'."""
  exceptions = EXCEPTIONS if exceptions is None else exceptions
  found = []
  for module, edges in sorted(g.items()):
    src = layer_of(module)
    for line, target, _ in edges:
      if (module, target) in exceptions:
        continue
      dst = layer_of(target)
      if src is not None and dst is not None and dst > src:
        found.append(f"{module}:{line} imports {target} (layer {LAYERS[src][0]} is below {LAYERS[dst][0]})")
      for pkg, banned in FORBIDDEN.items():
        if _within(module, pkg) and any(_within(target, b) for b in banned):
          found.append(f"{module}:{line} imports {target} ({pkg} must not import {', '.join(banned)})")
  return found


def cycles(g: dict[str, list[tuple[int, str, bool]]]) -> list[list[str]]:
  """One cycle path [a, b, ..., a] per strongly connected component of more than one module (Tarjan)."""
  succ = {m: sorted({t for _, t, _ in edges if t in g}) for m, edges in g.items()}
  index, low, stack, on_stack, comps = {}, {}, [], set(), []

  def strongconnect(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in succ[v]:
      if w not in index:
        strongconnect(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        comps.append(set(comp))

  for v in sorted(succ):
    if v not in index:
      strongconnect(v)
  out = []
  for comp in comps:  # A shortest path from the component's first module back to itself.
    start = min(comp)
    prev, frontier = {start: None}, [start]
    while frontier and start not in [w for v in frontier for w in succ[v]]:
      nxt = []
      for v in frontier:
        for w in succ[v]:
          if w in comp and w not in prev:
            prev[w] = v
            nxt.append(w)
      frontier = nxt
    last = next(v for v in frontier if start in succ[v])
    path = [last]
    while prev[path[-1]] is not None:
      path.append(prev[path[-1]])
    out.append(path[::-1] + [start])
  return sorted(out)


def function_level_imports(root: str = ROOT) -> dict[str, list[str]]:
  """{reason: ['module:line name']} of every import inside a function, by why it is there."""
  out = collections.defaultdict(list)
  for module, path in modules(root).items():
    with open(path) as f:
      found = imports(f.read(), module, os.path.basename(path) == "__init__.py")
    for line, name, in_fn in found:
      if not in_fn or any(n.startswith(name + ".") for ln, n, _ in found if ln == line):
        continue
      top = name.split(".")[0]
      if top == PACKAGE:
        entry = layer_of(module) is not None and LAYERS[layer_of(module)][0] in ("entry", "tools")
        reason = ("package module, in an entry point or tool (fast import and --help)" if entry
                  else "package module, in a library (cycle dodge or deferral)")
      elif top in HEAVY:
        reason = "heavy or optional third-party module (jax/optax, torch, faiss, tensorflow, tfds, ...)"
      else:
        reason = "other (stdlib, numpy)"
      out[reason].append(f"{module}:{line} {name}")
  return dict(sorted(out.items()))


def structure(root: str = ROOT) -> dict:
  """Rooms, upward imports, cycles and function-level imports of the tree at `root` (for the issue's note)."""
  g = graph(root)
  mods = modules(root)
  rooms = sorted(m.split(".")[1] for m, p in mods.items() if m.count(".") == 1 and p.endswith("__init__.py"))
  fn_level = function_level_imports(root)
  return {
      "rooms": rooms, "num_rooms": len(rooms), "num_modules": len(mods),
      "top_level_modules": sorted(m for m in mods if m.count(".") == 1 and m.split(".")[1] not in rooms),
      "upward_imports": upward_imports(g, exceptions={}), "cycles": cycles(g),
      "function_level_imports": {k: len(v) for k, v in fn_level.items()},
      "num_function_level_imports": sum(len(v) for v in fn_level.values()),
      "function_level_import_list": fn_level,
  }


def test_every_module_has_a_layer():
  missing = [m for m in modules() if layer_of(m) is None]
  assert not missing, f"Modules in no layer (add their package to LAYERS): {missing}"


def test_no_upward_imports():
  found = upward_imports(graph())
  assert not found, "Imports pointing up the layers:\n  " + "\n  ".join(found)


def test_no_import_cycles():
  found = cycles(graph())
  assert not found, "Import cycles:\n  " + "\n  ".join(" -> ".join(c) for c in found)


def test_exceptions_are_still_needed():
  """An exception whose import is gone must be removed, so the rule covers that module again."""
  seen = {(m, t) for m, edges in graph().items() for _, t, _ in edges}
  stale = sorted(set(EXCEPTIONS) - seen)
  assert not stale, f"Layering exceptions no longer needed (remove them): {stale}"


def test_checker_reports_an_injected_upward_import_and_cycle():
  """The checks fail on a fake graph with a data -> train import (in a function) and an a -> b -> a cycle."""
  g = {
      "rsvlm_jax.data.pipeline": [(3, "rsvlm_jax.data.sources", False), (9, "rsvlm_jax.train.trainer", True)],
      "rsvlm_jax.data.sources": [],
      "rsvlm_jax.train.trainer": [(1, "rsvlm_jax.data.pipeline", False), (2, "rsvlm_jax.evaluate.decode", False)],
      "rsvlm_jax.evaluate.decode": [],
      "rsvlm_jax.models.a": [(1, "rsvlm_jax.models.b", False)],
      "rsvlm_jax.models.b": [(5, "rsvlm_jax.models.a", True)],
  }
  assert upward_imports(g, exceptions={}) == [
      "rsvlm_jax.data.pipeline:9 imports rsvlm_jax.train.trainer (layer data is below train)",
      "rsvlm_jax.train.trainer:2 imports rsvlm_jax.evaluate.decode (rsvlm_jax.train must not import "
      "rsvlm_jax.evaluate)"]
  assert cycles(g) == [["rsvlm_jax.data.pipeline", "rsvlm_jax.train.trainer", "rsvlm_jax.data.pipeline"],
                       ["rsvlm_jax.models.a", "rsvlm_jax.models.b", "rsvlm_jax.models.a"]]
  assert upward_imports({"rsvlm_jax.data.pipeline": [(9, "rsvlm_jax.data.sources", False)],
                         "rsvlm_jax.data.sources": []}, exceptions={}) == []


def test_graph_reads_a_function_level_import_from_the_tree(tmp_path):
  """A source tree with an upward import inside a function and a relative-import cycle fails both checks."""
  pkg = tmp_path / PACKAGE
  for sub in ("data", "train"):
    (pkg / sub).mkdir(parents=True)
    (pkg / sub / "__init__.py").write_text("")
  (pkg / "__init__.py").write_text("")
  (pkg / "data" / "a.py").write_text("from . import b\n\ndef f():\n  from rsvlm_jax.train import t\n")
  (pkg / "data" / "b.py").write_text("def g():\n  from rsvlm_jax.data.a import f\n")
  (pkg / "train" / "t.py").write_text("import numpy\n")
  g = graph(str(tmp_path))
  assert upward_imports(g, exceptions={}) == [
      "rsvlm_jax.data.a:4 imports rsvlm_jax.train.t (layer data is below train)"]
  assert cycles(g) == [["rsvlm_jax.data.a", "rsvlm_jax.data.b", "rsvlm_jax.data.a"]]
  assert function_level_imports(str(tmp_path)) == {
      "package module, in a library (cycle dodge or deferral)": ["rsvlm_jax.data.a:4 rsvlm_jax.train.t",
                                                                 "rsvlm_jax.data.b:2 rsvlm_jax.data.a.f"]}


@pytest.mark.parametrize("source, expected", [
    ("from rsvlm_jax.train import trainer", {"rsvlm_jax.train", "rsvlm_jax.train.trainer"}),
    ("from rsvlm_jax import train", {"rsvlm_jax", "rsvlm_jax.train"}),
    ("import rsvlm_jax.train.trainer as t", {"rsvlm_jax.train.trainer"}),
    ("def f():\n  from rsvlm_jax.evaluate import report", {"rsvlm_jax.evaluate", "rsvlm_jax.evaluate.report"}),
    ("from ..train import trainer", {"rsvlm_jax.train", "rsvlm_jax.train.trainer"}),
    ("from . import decode", {"rsvlm_jax.evaluate", "rsvlm_jax.evaluate.decode"}),
    ("import importlib\nimportlib.import_module('rsvlm_jax.train')", {"importlib", "rsvlm_jax.train"}),
])
def test_every_import_form_is_seen(source, expected):
  assert {n for _, n in imported_modules(source, "rsvlm_jax.evaluate.x")} == expected


def test_function_level_imports_are_marked():
  source = "import os\n\ndef f():\n  import jax\n\nclass C:\n  def m(self):\n    from . import decode\n"
  assert [(n, in_fn) for _, n, in_fn in imports(source, "rsvlm_jax.evaluate.x")] == [
      ("os", False), ("jax", True), ("rsvlm_jax.evaluate", True), ("rsvlm_jax.evaluate.decode", True)]


if __name__ == "__main__":
  print(json.dumps(structure(sys.argv[1] if len(sys.argv) > 1 else ROOT), indent=2))
