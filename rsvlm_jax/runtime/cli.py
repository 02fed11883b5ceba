"""What every user command shares: its flags, --help, user errors -> one line on stderr and exit 2.

Every command (main.py, sweep.py, build_dataset.py, tools/*.py, evaluate/*.py, config_schema.py) keeps its flags
in a FlagValues of its own, defined at module level, so that importing several commands (main.py's --config next
to dris_preview's) defines nothing in absl's global FLAGS and no two clash; it runs under absl's app.run through
`run`:

  FLAGS = flags.FlagValues()  # This command's flags only.
  _OUT = flags.DEFINE_string("out", None, "Output JSON.", flag_values=FLAGS)

  def main(argv): ...

  if __name__ == "__main__":
    cli.run(main, FLAGS, "zero_shot")

`run` gives every command the same behaviour: --help (-h, -?, --helpshort) prints the module docstring and the
command's flags on stdout, exit 0; --helpfull adds absl's own flags (logging: -v, --alsologtostderr, ...). A bad,
unknown or missing flag, a missing or unexpected positional argument, an app.UsageError and any of USER_ERRORS
that main raises (a UserError, or a built-in error of a bad path or value) become `TOOL: error: MESSAGE` on
stderr and exit status 2, never a traceback. `call` runs the same in-process and returns the exit status (for tests).

Checks of output paths (`check_output_file`, `check_writable_dir`) run before the slow work (loading a model,
reading images); library code that refuses user input raises UserError.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from typing import Any, Callable, NoReturn, Sequence
import uuid

from absl import app
from absl import flags


class UserError(Exception):
  """Bad input from the user (a flag, a file, a record): the message names it; no traceback is shown."""


# What a bad path or value raises on its own; reported like a UserError.
USER_ERRORS = (UserError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError, ValueError)

HELP = ("--help", "-help", "--helpshort", "-helpshort", "-h", "-?")
HELPFULL = ("--helpfull", "-helpfull")


@contextlib.contextmanager
def user_errors(tool: str, errors: tuple[type[BaseException], ...] = USER_ERRORS):
  """Turns `errors` raised inside the block into `TOOL: error: MESSAGE` on stderr and exit status 2."""
  try:
    yield
  except errors as e:
    message = str(e) if not isinstance(e, OSError) or not e.filename else _os_error_message(e)
    fail(tool, message)


def fail(tool: str, message: str, status: int = 2) -> NoReturn:
  """`TOOL: error: MESSAGE` (on one line) on stderr, exit `status` (2: the user's input; main.py's run failures
  use 1)."""
  message = "; ".join(line.strip() for line in str(message).splitlines() if line.strip())
  print(f"{tool}: error: {message}", file=sys.stderr, flush=True)
  sys.exit(status)


def _os_error_message(e: OSError) -> str:
  return f"{e.filename}: {e.strerror or e}"


def run(main: Callable[[list[str]], Any], tool_flags: flags.FlagValues, tool: str, *,
        commands: Sequence[str] = (), positional: Sequence[str] = ()) -> NoReturn:
  """Runs `main` (absl style: main(argv)) under app.run with the flags of `tool_flags`; see the module doc.

  `commands`: the subcommands of a command taking one (argv[1], e.g. index build|add|query|prune).
  `positional`: the names of the positional arguments it takes (after the subcommand, if any), each required
  (e.g. build_dataset NAME). A command with neither takes no positional argument.
  """
  app.run(lambda argv: _call_main(main, tool, argv),
          flags_parser=lambda argv: _parse(tool_flags, tool, argv, commands, positional, _doc(main),
                                           with_absl=True))


def call(main: Callable[[list[str]], Any], tool_flags: flags.FlagValues, tool: str, args: Sequence[str], *,
         commands: Sequence[str] = (), positional: Sequence[str] = ()) -> int:
  """`run` in-process on `args` (no program name): parses them into `tool_flags` afresh, returns the exit status.

  While parsing, sys.argv is the command line (config_flags reads its `--config.KEY=V` overrides there); the
  flags defined by parsing (those overrides) are removed again, so the next call parses afresh.
  """
  tool_flags.unparse_flags()
  defined, argv_before = set(tool_flags), sys.argv
  try:
    sys.argv = [tool, *args]
    try:
      argv = _parse(tool_flags, tool, sys.argv, commands, positional, _doc(main), with_absl=False)
    finally:
      sys.argv = argv_before
      for name in set(tool_flags) - defined:
        delattr(tool_flags, name)
    result = _call_main(main, tool, argv)
  except SystemExit as e:
    return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  return result if isinstance(result, int) else 0


def _call_main(main, tool: str, argv: list[str]):
  with user_errors(tool, USER_ERRORS + (app.UsageError,)):
    return main(argv)


def _doc(main) -> str:
  module = sys.modules.get(getattr(main, "__module__", ""), None)
  return (getattr(module, "__doc__", None) or f"{getattr(main, '__module__', '')}\n").strip("\n") + "\n"


def _parse(tool_flags: flags.FlagValues, tool: str, argv: list[str], commands: Sequence[str],
           positional_names: Sequence[str], doc: str, *, with_absl: bool) -> list[str]:
  """argv -> [program, positional...]: help first, then absl's own flags (logging), then the command's."""
  args = list(argv[1:argv.index("--")] if "--" in argv else argv[1:])
  if any(a in HELP or a in HELPFULL for a in args):
    print_help(tool_flags, doc, full=any(a in HELPFULL for a in args))
    sys.exit(0)
  argv = spread_list_values(tool_flags, argv)
  try:
    rest = flags.FLAGS(argv, known_only=True) if with_absl else list(argv)
    rest = tool_flags(rest)
  except flags.Error as e:
    fail(tool, f"{_flag_error(e)} (--help lists the flags)")
  positional = rest[1:]
  if commands:
    if not positional or positional[0] not in commands:
      got = f"got {positional[0]!r}" if positional else "none given"
      fail(tool, f"expected a command, one of {', '.join(commands)} ({got})")
    positional = positional[1:]
  if len(positional) < len(positional_names):
    fail(tool, f"missing argument(s) {' '.join(positional_names[len(positional):])} (--help shows the usage)")
  positional = positional[len(positional_names):]
  if positional:
    fail(tool, f"unexpected argument(s) {' '.join(positional)} (flags are --name=value or --name value; "
         "--help lists them)")
  return rest


def spread_list_values(tool_flags: flags.FlagValues, argv: list[str]) -> list[str]:
  """`--text a b` -> `--text a --text=b` for the command's list flags (DEFINE_multi_*): several values after one
  flag, as argparse's nargs="+" took them (index query --text 'a harbor' 'a forest'); repeating the flag works too."""
  lists = {name for name in tool_flags if isinstance(tool_flags[name], flags.MultiFlag)}
  out, owner, value_next = [], None, False
  for arg in argv:
    if value_next:  # The value right after `--name`.
      value_next = False
    elif arg.startswith("-") and len(arg) > 1:
      name, eq, _ = arg.lstrip("-").partition("=")
      owner = name if name in lists else None
      value_next = owner is not None and not eq
    elif owner:
      arg = f"--{owner}={arg}"
    out.append(arg)
  return out


def _flag_error(e: flags.Error) -> str:
  """absl's message, with its lines for required flags left out ("flag --x=None: Flag --x must have a value
  other than None.") said as one "missing required flag(s) --x, --y"."""
  missing, other = [], []
  for line in str(e).splitlines():
    m = _REQUIRED.match(line.strip())
    (missing if m else other).append(f"--{m.group(1)}" if m else line.strip())
  return "; ".join(([f"missing required flag(s) {', '.join(missing)}"] if missing else []) + other)


_REQUIRED = re.compile(r"flag --(\w+)=None: Flag --\1 must have a value other than None\.$")


def print_help(tool_flags: flags.FlagValues, doc: str, *, full: bool = False) -> None:
  """The usage docstring and the command's flags (with `full`, absl's own flags too) on stdout."""
  lines = [line for line in tool_flags.get_help(include_special_flags=False).splitlines()
           if line.startswith(" ")]  # Without the module headers (the defining file's path).
  text = doc + ("\nflags:\n" + "\n".join(lines) + "\n" if lines else "")
  if full:
    text += "\nabsl flags (logging, debugging):\n" + flags.FLAGS.get_help() + "\n"
  else:
    text += "\nTry --helpfull to see absl's flags too (logging: -v, --alsologtostderr, ...).\n"
  sys.stdout.write(text)
  sys.stdout.flush()


def check_output_file(path: str, flag: str, *, overwrite: bool = True, new_folders: bool = False) -> str:
  """Checks that `path` can be written as a file (not a directory, its folder exists and is writable).

  With `new_folders` its folder may be missing (the writer creates it) below a writable one. Raises a UserError
  naming `flag` otherwise (and when it exists while `overwrite` is False); returns the path.
  """
  if not path:
    raise UserError(f"{flag} is empty")
  if os.path.isdir(path):
    raise UserError(f"{flag}={path} is a directory; give a file name")
  if os.path.exists(path) and not overwrite:
    raise UserError(f"{flag}={path} exists")
  folder = os.path.dirname(os.path.abspath(path))
  while new_folders and not os.path.exists(folder):
    folder = os.path.dirname(folder)
  if new_folders and not os.path.isdir(folder):
    raise UserError(f"{flag}={path}: {folder} is a file, not a folder")
  check_writable_dir(folder, f"{flag}={path}")
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


def print_result(table: str, result: Any, out_path: str | None = None, *, json_indent: int | None = None) -> None:
  """Prints `table`, then `result` as JSON (last on stdout, for scripts), and writes the JSON to `out_path` too."""
  print(table)
  print(json.dumps(result, indent=json_indent), flush=True)
  if out_path:
    with open(out_path, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=2)
      f.write("\n")
