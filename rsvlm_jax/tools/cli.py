"""What every user command shares: user errors -> one line on stderr and exit 2, output paths checked up front.

A tool wraps its work in `with cli.user_errors("caption"):`; anything raised as a UserError (or one of the
built-in errors a bad path or value raises) becomes `caption: error: MESSAGE` on stderr and exit status 2,
never a traceback. Checks of output paths run before the slow work (loading a model, reading images).
"""
from __future__ import annotations

import contextlib
import os
import sys
import uuid


class UserError(Exception):
  """Bad input from the user (a flag, a file, a record): the message names it; no traceback is shown."""


# What a bad path or value raises on its own; reported like a UserError.
USER_ERRORS = (UserError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError, ValueError)


@contextlib.contextmanager
def user_errors(tool: str, errors: tuple[type[BaseException], ...] = USER_ERRORS):
  """Turns `errors` raised inside the block into `TOOL: error: MESSAGE` on stderr and exit status 2."""
  try:
    yield
  except errors as e:
    message = str(e) if not isinstance(e, OSError) or not e.filename else _os_error_message(e)
    print(f"{tool}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _os_error_message(e: OSError) -> str:
  return f"{e.filename}: {e.strerror or e}"


def check_output_file(path: str, flag: str, *, overwrite: bool = True) -> str:
  """Checks that `path` can be written as a file (not a directory, its folder exists and is writable).

  Raises a UserError naming `flag` otherwise (and when it exists while `overwrite` is False); returns the path.
  """
  if not path:
    raise UserError(f"{flag} is empty")
  if os.path.isdir(path):
    raise UserError(f"{flag}={path} is a directory; give a file name")
  if os.path.exists(path) and not overwrite:
    raise UserError(f"{flag}={path} exists")
  check_writable_dir(os.path.dirname(os.path.abspath(path)), f"{flag}={path}")
  return path


def check_writable_dir(folder: str, what: str) -> None:
  """Raises a UserError naming `what` unless `folder` exists and a file can be created in it."""
  if not os.path.isdir(folder):
    raise UserError(f"{what}: folder {folder} does not exist")
  probe = os.path.join(folder, f".rsvlm_write_probe_{uuid.uuid4().hex}")
  try:
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise UserError(f"{what}: cannot write in {folder}: {e.strerror or e}") from e
