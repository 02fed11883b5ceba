"""Hiding the INFO chatter of libraries (orbax, jax's backend probing, TFDS) from runs and user tools."""
from __future__ import annotations

import importlib.util
import logging as std_logging
import os

# Packages whose records below WARNING are hidden unless asked for (orbax writes ~30 per checkpoint save).
QUIET_PACKAGES = ("orbax",)
# Warnings of those packages that report nothing wrong, hidden too: orbax opens a checkpoints folder read-only
# (to list its steps) with a warning each time.
HARMLESS_WARNINGS = ("Given directory is read only",)


class _QuietLibraries(std_logging.Filter):
  """Drops records below `level` logged from inside the given package directories (absl logs them under one logger)."""

  def __init__(self, dirs: tuple[str, ...], level: int = std_logging.WARNING):
    super().__init__()
    self.dirs = dirs
    self.level = level

  def filter(self, record):
    if not record.pathname.startswith(self.dirs):
      return True
    if record.levelno == std_logging.WARNING and str(record.msg).startswith(HARMLESS_WARNINGS):
      return False
    return record.levelno >= self.level


def _package_dirs(packages) -> tuple[str, ...]:
  dirs = []
  for name in packages:
    try:
      spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
      spec = None
    dirs += [os.path.join(p, "") for p in (spec.submodule_search_locations or [])] if spec else []
  return tuple(dirs)


def quiet_library_logs(quiet: bool = True, packages: tuple[str, ...] = QUIET_PACKAGES,
                       level: int = std_logging.WARNING) -> None:
  """Hides (quiet=True) or shows again the records below `level` that `packages` log."""
  loggers = [std_logging.getLogger("absl")] + [std_logging.getLogger(p) for p in packages]
  for lg in loggers:
    for f in [f for f in lg.filters if isinstance(f, _QuietLibraries)]:
      lg.removeFilter(f)
  if not quiet:
    return
  dirs = _package_dirs(packages)
  for lg in loggers:
    lg.addFilter(_QuietLibraries(dirs, level))
