"""Prompt templates for zero-shot scene classification ("{}" is the class name).

- "remoteclip": the single template RemoteCLIP reports its zero-shot results with.
- "rs_ensemble": this project's own 100-template ensemble (remote-sensing, aerial and satellite phrasings of
  image/photo/picture/view at several qualities), in the style GeoRSCLIP evaluates with but not a copy of its
  file: to reproduce a published number exactly, pass that project's templates as a FILE. "georsclip" is a
  deprecated name of this ensemble (accepted with a warning).
- "openai": "a photo of a {}." (the generic CLIP baseline).

A FILE is UTF-8 text, one template per line; blank lines and lines starting with "#" are skipped. Each
template holds exactly one "{}" (where the class name goes) and is read by Python's str.format: a literal
brace is written doubled, "{{" or "}}"; "{c}", "{0}", "{:>8}" and a second "{}" are refused, naming the line.
"""
from __future__ import annotations

import itertools
import os
import string

from absl import logging

_SOURCES = ("remote sensing", "aerial", "satellite", "overhead", "top-down")
_KINDS = ("image", "photo", "picture", "view")
_QUALITIES = ("", "high resolution ", "low resolution ", "blurry ", "clear ")


def _ensemble() -> list[str]:
  out = []
  for quality, source, kind in itertools.product(_QUALITIES, _SOURCES, _KINDS):
    article = "an" if (quality or source)[0] in "aeiou" else "a"
    out.append(f"{article} {quality}{source} {kind} of {{}}.")
  return out


TEMPLATES = {
    "remoteclip": ["a satellite photo of {}."],
    "rs_ensemble": _ensemble(),
    "openai": ["a photo of a {}."],
}
# Deprecated names -> the set they name (documented command lines keep working, with a warning).
ALIASES = {"georsclip": "rs_ensemble"}


def canonical_name(name_or_file: str) -> str:
  """The set's current name for a deprecated alias; anything else unchanged."""
  return ALIASES.get(name_or_file, name_or_file)


def load(name_or_file: str) -> list[str]:
  """A named set, or a templates FILE (UTF-8, one template with exactly one "{}" per line)."""
  if name_or_file in ALIASES:
    logging.warning("--templates %s is a deprecated name of %s: this project's own %d-template ensemble, not "
                    "GeoRSCLIP's published templates (pass those as a FILE to reproduce its numbers)", name_or_file,
                    ALIASES[name_or_file], len(TEMPLATES[ALIASES[name_or_file]]))
  name = canonical_name(name_or_file)
  if name in TEMPLATES:
    return list(TEMPLATES[name])
  if not os.path.isfile(name_or_file):
    raise ValueError(f"--templates {name_or_file!r} is neither one of {sorted(TEMPLATES)} nor a file")
  lines = [(i, line.strip()) for i, line in enumerate(_read_utf8(name_or_file).splitlines(), 1)]
  lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
  if not lines:
    raise ValueError(f"{name_or_file}: every template line needs a '{{}}' for the class name (the file has none)")
  for i, line in lines:
    check_template(line, f"{name_or_file}:{i}")
  return [line for _, line in lines]


def check_template(template: str, where: str) -> None:
  """Raises a ValueError naming `where` unless `template` has exactly one "{}" and only doubled literal braces."""
  hint = "the class name goes where '{}' is (exactly one per template); write a literal brace as '{{' or '}}'"
  try:
    fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
  except ValueError as e:  # A single '{' or '}'.
    raise ValueError(f"{where}: {e} in {template!r}; {hint}") from e
  odd = [(name, spec, conv) for name, spec, conv in fields if name or spec or conv]
  if odd:
    name, spec, conv = odd[0]
    field = "{" + name + ("!" + conv if conv else "") + (":" + spec if spec else "") + "}"
    raise ValueError(f"{where}: placeholder {field} in {template!r}; {hint}")
  if len(fields) != 1:
    raise ValueError(f"{where}: {len(fields)} '{{}}' placeholders in {template!r}; {hint}")


def _read_utf8(path: str) -> str:
  """The file's text (a UTF-8 byte-order mark is allowed); a decode error names the file, line and byte."""
  with open(path, "rb") as f:
    raw = f.read()
  try:
    return raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
    raise ValueError(f"{path}:{line}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {column}); save the templates "
                     f"file as UTF-8") from e
