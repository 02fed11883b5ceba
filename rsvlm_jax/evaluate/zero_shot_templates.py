"""Prompt templates for zero-shot scene classification ("{}" is the class name).

- "remoteclip": the single template RemoteCLIP reports its zero-shot results with.
- "georsclip": a 100-template ensemble in the style GeoRSCLIP evaluates with (remote-sensing, aerial and
  satellite phrasings of image/photo/picture/view at several qualities). It is our own list, generated below,
  not a copy of that project's file: to reproduce a published number exactly, pass that project's templates
  as a FILE (one template per line, each with "{}").
- "openai": "a photo of a {}." (the generic CLIP baseline).
"""
from __future__ import annotations

import itertools
import os

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
    "georsclip": _ensemble(),
    "openai": ["a photo of a {}."],
}


def load(name_or_file: str) -> list[str]:
  """A named set, or a text file with one template per line (each containing "{}")."""
  if name_or_file in TEMPLATES:
    return list(TEMPLATES[name_or_file])
  if not os.path.isfile(name_or_file):
    raise ValueError(f"--templates {name_or_file!r} is neither one of {sorted(TEMPLATES)} nor a file")
  with open(name_or_file, encoding="utf-8") as f:
    lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
  bad = [line for line in lines if "{}" not in line]
  if not lines or bad:
    raise ValueError(f"{name_or_file}: every template line needs a '{{}}' for the class name"
                     + (f"; e.g. {bad[0]!r}" if bad else " (the file has none)"))
  return lines
