"""Package layering: training and evaluation never import each other; models and data import neither; the DRIS
pipeline part (scores, buckets, calibration) imports neither models nor evaluation, and no DRIS analysis a Trainer.

Shared runtime pieces (device mesh, compile counting) live in rsvlm_jax/runtime; the job (rsvlm_jax/job.py)
is where a trainer meets the evaluators. Every module is parsed (not imported), so imports inside functions
count too.
"""
from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "rsvlm_jax")

# Package -> the packages of rsvlm_jax it must not import (at any depth: rsvlm_jax.train.trainer included).
FORBIDDEN = {
    "rsvlm_jax.train": ("rsvlm_jax.evaluate",),
    "rsvlm_jax.evaluate": ("rsvlm_jax.train",),
    "rsvlm_jax.models": ("rsvlm_jax.train", "rsvlm_jax.evaluate"),
    "rsvlm_jax.data": ("rsvlm_jax.train", "rsvlm_jax.evaluate", "rsvlm_jax.models"),
    "rsvlm_jax.runtime": ("rsvlm_jax.train", "rsvlm_jax.evaluate"),  # Shared by both, so below both.
    # DRIS: the data pipeline's part (scores, buckets, calibration, policy) sits below models and evaluation;
    # the analyses of a trained model (resolution gain, frontier) take a model and a predictor, never a Trainer.
    **{f"rsvlm_jax.dris.{m}": ("rsvlm_jax.train", "rsvlm_jax.evaluate", "rsvlm_jax.models")
       for m in ("buckets", "calibration", "complexity", "learned", "policy", "scorers", "tiles")},
    "rsvlm_jax.dris": ("rsvlm_jax.train",),
}

# (importing module, imported module) pairs allowed for now, each with the reason.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_name(path: str) -> str:
  rel = os.path.splitext(os.path.relpath(path, ROOT))[0].split(os.sep)
  return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _modules() -> list[tuple[str, str]]:
  """(dotted name, path) of every .py file under rsvlm_jax/."""
  out = []
  for d, _, files in os.walk(PACKAGE):
    out += [(_module_name(os.path.join(d, f)), os.path.join(d, f)) for f in sorted(files) if f.endswith(".py")]
  return sorted(out)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
  """(line, dotted name) of everything `source` (the text of `module`) imports, anywhere in it.

  `from a.b import c` yields a.b.c as well as a.b (c may be a module or a name in a.b), relative imports are
  resolved against `module`, and importlib.import_module / __import__ of a constant string count too.
  """
  package = module if is_package else module.rpartition(".")[0]
  out = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      out += [(node.lineno, a.name) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")
        parts = parts[:len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
      out.append((node.lineno, base))
      out += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
      fn = node.func
      name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
      if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
        out.append((node.lineno, node.args[0].value))
  return out


def _within(name: str, package: str) -> bool:
  return name == package or name.startswith(package + ".")


def violations() -> list[str]:
  found = []
  for module, path in _modules():
    rules = [(pkg, banned) for pkg, banned in FORBIDDEN.items() if _within(module, pkg)]
    if not rules:
      continue
    with open(path) as f:
      imports = imported_modules(f.read(), module, os.path.basename(path) == "__init__.py")
    for line, name in imports:
      if any(n.startswith(name + ".") for ln, n in imports if ln == line):
        continue  # `from a.b import c` is reported once, as a.b.c.
      for pkg, banned in rules:
        for b in banned:
          if _within(name, b) and (module, name) not in EXCEPTIONS:
            found.append((path, line, f"{os.path.relpath(path, ROOT)}:{line}: {module} imports {name} "
                                      f"({pkg} must not import {b})"))
  return [msg for _, _, msg in sorted(set(found))]


def test_no_forbidden_imports_between_packages():
  found = violations()
  assert not found, "Layering violations:\n  " + "\n  ".join(found)


def test_exceptions_are_still_needed():
  """An exception whose import is gone must be removed, so the rule covers that module again."""
  seen = set()
  for module, path in _modules():
    with open(path) as f:
      seen |= {(module, n) for _, n in imported_modules(f.read(), module, os.path.basename(path) == "__init__.py")}
  stale = sorted(set(EXCEPTIONS) - seen)
  assert not stale, f"Layering exceptions no longer needed (remove them): {stale}"


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
