"""Docs and config docstrings point at things that exist: config keys, files."""
import glob
import os
import re

import pytest

from configs import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_DOCS = sorted(glob.glob(os.path.join(ROOT, "launch", "*")))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True))


def _text(path):
  with open(path) as f:
    return f.read()


@pytest.mark.parametrize("path", LAUNCH_DOCS, ids=os.path.basename)
def test_documented_config_overrides_are_real_keys(path):
  config = demo.get_config()
  for key in re.findall(r"--config\.([A-Za-z_][\w.]*\w)", _text(path)):
    node = config
    for part in key.split("."):
      assert part in node, f"{os.path.relpath(path, ROOT)} documents --config.{key}: no key {part!r}"
      node = node[part]


@pytest.mark.parametrize("path", LAUNCH_DOCS + CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_referenced_files_exist(path):
  text = _text(path)
  assert "DESIGN" not in text, f"{path} refers to a DESIGN file, which is not part of the project"
  for name in re.findall(r"[\w./-]+\.(?:py|md|sh|sbatch)\b", text):
    dirs = (ROOT, os.path.dirname(path), os.path.join(ROOT, "configs"), os.path.join(ROOT, "rsvlm_jax"))
    candidates = [os.path.join(d, name) for d in dirs]
    assert any(os.path.exists(c) for c in candidates), f"{path} refers to {name}, which does not exist"


def _readme_layout() -> str:
  text = _text(os.path.join(ROOT, "README.md"))
  section = text.split("## Layout", 1)[1]
  return section.split("```", 2)[1]


def test_readme_layout_names_every_module():
  """Every module of the package appears in the README's layout section, under its folder."""
  layout = _readme_layout()
  missing = []
  for path in sorted(glob.glob(os.path.join(ROOT, "rsvlm_jax", "**", "*.py"), recursive=True)):
    rel = os.path.relpath(path, ROOT)
    name = os.path.splitext(os.path.basename(path))[0]
    if name == "__init__":
      continue
    folder = os.path.dirname(rel) + "/"
    if folder == "rsvlm_jax/":
      found = rel in layout
    else:
      block = layout.split(folder, 1)[1].split("\nrsvlm_jax/", 1)[0].split("\nconfigs/", 1)[0] if folder in layout else ""
      found = re.search(rf"\b{name}\b", block) is not None
    if not found:
      missing.append(rel)
  assert not missing, f"README layout misses {missing}"


def test_readme_links_exist():
  text = _text(os.path.join(ROOT, "README.md"))
  for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
    if not link.startswith("http"):
      assert os.path.exists(os.path.join(ROOT, link)), f"README links to {link}, which does not exist"
