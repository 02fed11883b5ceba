"""One CLI style for every user command (runtime/cli.py): the pattern in the source, --help, bad flags, and every
documented command line (README.md, docs/, configs/, launch/, Makefile, the commands' own docstrings) parsing."""
from __future__ import annotations

import ast
import glob
import importlib
import os
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags

from rsvlm_jax.runtime import cli
from tests.fixtures import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The commands this issue put on runtime/cli.py (any other module with a __main__ block is checked too).
KNOWN = ("rsvlm_jax.main", "rsvlm_jax.sweep", "rsvlm_jax.build_dataset", "rsvlm_jax.tools.caption",
         "rsvlm_jax.tools.convert_open_clip", "rsvlm_jax.tools.dris_preview", "rsvlm_jax.tools.fit_dris_scorer",
         "rsvlm_jax.tools.index", "rsvlm_jax.tools.memory_table", "rsvlm_jax.tools.zero_shot",
         "rsvlm_jax.evaluate.captioning", "rsvlm_jax.config_schema")
# Commands not (yet) on runtime/cli.py, each with the reason.
NOT_YET: dict[str, str] = {}


def _module_path(module: str) -> str:
  return os.path.join(ROOT, *module.split(".")) + ".py"


def _main_modules() -> list[str]:
  """Every module of the package with an `if __name__ == "__main__":` block."""
  found = []
  for path in glob.glob(os.path.join(ROOT, "rsvlm_jax", "**", "*.py"), recursive=True):
    with open(path, encoding="utf-8") as f:
      if re.search(r'^if __name__ == "__main__":', f.read(), re.M):
        found.append(os.path.splitext(os.path.relpath(path, ROOT))[0].replace(os.sep, "."))
  return sorted(found)


def _is_main_guard(node: ast.AST) -> bool:
  return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
          and getattr(node.test.left, "id", "") == "__name__")


def _pattern_problems(module: str) -> list[str]:
  """How `module` departs from the one pattern (runtime/cli.py's docstring)."""
  with open(_module_path(module), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  problems = []
  for node in ast.walk(tree):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
      if "argparse" in names:
        problems.append(f"line {node.lineno}: argparse (one style: absl flags through runtime/cli.py)")
    if isinstance(node, ast.Attribute) and node.attr == "FLAGS" and getattr(node.value, "id", "") == "flags":
      problems.append(f"line {node.lineno}: absl's global flags.FLAGS (a command keeps its flags in its own "
                      "FlagValues)")
    if isinstance(node, ast.Call):
      fn = node.func
      name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
      owner = getattr(fn.value, "id", "") if isinstance(fn, ast.Attribute) else ""
      if owner == "app" and name == "run":
        problems.append(f"line {node.lineno}: app.run directly (cli.run runs it)")
      if owner in ("flags", "config_flags") and (name.startswith("DEFINE") or name in (
          "mark_flags_as_required", "mark_flag_as_required", "register_validator")):
        if not any(k.arg == "flag_values" and getattr(k.value, "id", "") == "FLAGS" for k in node.keywords):
          problems.append(f"line {node.lineno}: {owner}.{name} without flag_values=FLAGS")
  if not any(isinstance(n, ast.FunctionDef) and n.name == "main" and [a.arg for a in n.args.args] == ["argv"]
             for n in tree.body):
    problems.append("no module-level main(argv)")
  guards = [n for n in tree.body if _is_main_guard(n)]
  call = guards[0].body[0].value if guards and len(guards[0].body) == 1 and isinstance(
      guards[0].body[0], ast.Expr) else None
  if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "cli.run" and len(call.args) == 3
          and ast.unparse(call.args[0]) == "main" and ast.unparse(call.args[1]) in ("FLAGS", "flags.FlagValues()")
          and isinstance(call.args[2], ast.Constant) and {k.arg for k in call.keywords} <= {"commands", "positional"}):
    problems.append('the __main__ block is not the one line `cli.run(main, FLAGS, "NAME"[, commands=...]'
                    '[, positional=...])`')
  return problems


def _run_name(module: str) -> str | None:
  """The NAME of `cli.run(main, FLAGS, "NAME")` in `module`'s __main__ block (None without one)."""
  with open(_module_path(module), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if (isinstance(node, ast.Call) and ast.unparse(node.func) == "cli.run" and len(node.args) == 3
        and isinstance(node.args[2], ast.Constant)):
      return node.args[2].value
  return None


# Every `python -m` command of the package (but NOT_YET's): module -> the name its errors carry.
COMMANDS = {m: _run_name(m) for m in _main_modules() if m not in NOT_YET}


def test_every_command_uses_the_one_pattern():
  assert set(KNOWN) <= set(COMMANDS)
  problems = {m: p for m in COMMANDS if (p := _pattern_problems(m))}
  assert not problems, problems


def test_the_pattern_check_catches_the_other_styles(tmp_path, monkeypatch):
  """The check above, on the styles the tools had before (module-level global flags, flags defined under
  __main__, a _define_flags() dict, argparse)."""
  monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
  os.makedirs(tmp_path / "pkg")
  styles = {
      "global_flags": 'from absl import app, flags\n_X = flags.DEFINE_string("x", None, "x")\n'
                      'def main(argv):\n  pass\nif __name__ == "__main__":\n  app.run(main)\n',
      "under_main": 'from absl import app, flags\nFLAGS = flags.FLAGS\ndef main(argv):\n  pass\n'
                    'if __name__ == "__main__":\n  flags.DEFINE_string("x", None, "x")\n  app.run(main)\n',
      "argparse": 'import argparse\nimport sys\ndef main(argv=None):\n  return 0\n'
                  'if __name__ == "__main__":\n  sys.exit(main())\n',
  }
  for name, source in styles.items():
    (tmp_path / "pkg" / f"{name}.py").write_text(source)
    assert _pattern_problems(f"pkg.{name}"), name


def test_importing_every_command_defines_no_global_flag():
  """Tests import several commands in one process next to main.py's --config/--workdir: nothing clashes."""
  modules = [importlib.import_module(m) for m in COMMANDS]  # main's --config/--workdir next to dris_preview's.
  own = [(name, m.FLAGS[name]) for m in modules if hasattr(m, "FLAGS") for name in m.FLAGS]
  assert {"model", "out", "images", "index", "refs", "config", "workdir"} <= {name for name, _ in own}
  assert not [name for name, flag in own if name in flags.FLAGS and flags.FLAGS[name] is flag]


def _run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
  procs = [subprocess.Popen([sys.executable, "-m", *c], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for c in commands]
  return [subprocess.CompletedProcess(c, p.wait(timeout=300), *p.communicate()) for c, p in zip(commands, procs)]


def test_help_and_bad_flags_as_a_user_runs_them():
  """`python -m CMD --help`: the usage docstring and the command's flags on stdout, exit 0. An unknown flag:
  one line `NAME: error: ...` on stderr, exit 2, no traceback."""
  modules = list(COMMANDS)
  runs = _run_all([[m, "--help"] for m in modules] + [[m, "--no_such_flag=1"] for m in modules]
                  + [["rsvlm_jax.tools.zero_shot", "--helpfull"]])
  for module, run in zip(modules, runs[:len(modules)]):
    assert run.returncode == 0, (module, run.stderr[-2000:])
    doc = importlib.import_module(module).__doc__
    assert doc.strip().splitlines()[0] in run.stdout, module
    flag_names = getattr(importlib.import_module(module), "FLAGS", {})
    assert all(f"--{name}:" in run.stdout or f"--[no]{name}:" in run.stdout for name in flag_names), module
  for module, run in zip(modules, runs[len(modules):-1]):
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, (module, run.stderr)
    assert lines[0] == f"{COMMANDS[module]}: error: Unknown command line flag 'no_such_flag' (--help lists the flags)"
  full = runs[-1]
  assert full.returncode == 0 and "--dataset:" in full.stdout and "--verbosity" in full.stdout


@pytest.mark.parametrize("args,message", [
    (["--model", "m"], "caption: error: missing required flag(s) --images, --out (--help lists the flags)"),
    (["--model", "m", "--images", "i", "--out", "o", "extra"],
     "caption: error: unexpected argument(s) extra (flags are --name=value or --name value; --help lists them)"),
    (["--model", "m", "--images", "i", "--out", "o", "--beam=x"],
     "caption: error: flag --beam=x: invalid literal for int() with base 10: 'x' (--help lists the flags)"),
])
def test_flag_errors_are_one_line_and_exit_2(args, message, capsys):
  from rsvlm_jax.tools import caption  # pylint: disable=g-import-not-at-top
  assert cli.call(caption.main, caption.FLAGS, "caption", args) == 2
  assert capsys.readouterr().err.strip() == message


@pytest.mark.parametrize("args,message", [
    ([], "index: error: expected a command, one of build, add, query, prune (none given)"),
    (["serve"], "index: error: expected a command, one of build, add, query, prune (got 'serve')"),
    (["build", "--index", "I", "--images", "x", "--out", "o", "--model", "m"],
     "index build: error: --index: not a flag of `index build` (its flags: --model, --images, --out, --overwrite, "
     "--batch_size, --shard_rows, --log_every)"),
    (["add", "--images", "x"], "index add: error: missing required flag(s) --index"),
    (["query", "--index", "I", "--k", "0", "--text", "a"], "index query: error: --k must be at least 1, got 0"),
])
def test_index_subcommands_and_their_flags(args, message, capsys, tmp_path):
  from rsvlm_jax.tools import index  # pylint: disable=g-import-not-at-top
  assert cli.call(index.main, index.FLAGS, "index", args, commands=index.COMMANDS) == 2
  assert capsys.readouterr().err.strip() == message


def test_list_flags_take_several_values_after_one_flag():
  from rsvlm_jax.tools import index  # pylint: disable=g-import-not-at-top
  argv = ["index", "query", "--index", "I", "--text", "a harbor", "a forest", "--text", "fields", "--image=x.png",
          "y.png", "--k", "3"]
  assert cli.call(lambda a: 0, index.FLAGS, "index", argv[1:], commands=index.COMMANDS) == 0
  assert index.FLAGS.text == ["a harbor", "a forest", "fields"] and index.FLAGS.image == ["x.png", "y.png"]
  assert index.FLAGS.k == 3


def test_memory_table_real_call(tmp_path, capsys):
  """memory_table's one real call (the other commands' run in their own tests): a tiny variant, two buckets."""
  from rsvlm_jax.tools import memory_table  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "table.md")
  assert cli.call(memory_table.main, memory_table.FLAGS, "memory_table",
                  ["--variants=mu/8", "--resolutions=32,64", "--batch_per_device=2", "--act_batch=1", "--devices=2",
                   "--fsdp", f"--out={out}"]) == 0
  with open(out, encoding="utf-8") as f:
    table = f.read()
  assert table in capsys.readouterr().out and "| mu/8 |" in table and "act @64px" in table
  assert cli.call(memory_table.main, memory_table.FLAGS, "memory_table", [f"--out={tmp_path}"]) == 2  # A folder.


def documented_command_lines() -> list[tuple[str, str, list[str]]]:
  """(where, module, args) of every `python -m rsvlm_jax.X ...` line (a line that starts with it, with its
  backslash continuations) in README.md, docs/, configs/, launch/, the Makefile and the commands' docstrings."""
  files = ([os.path.join(ROOT, "README.md"), os.path.join(ROOT, "Makefile")]
           + glob.glob(os.path.join(ROOT, "docs", "*.md")) + glob.glob(os.path.join(ROOT, "configs", "*.py"))
           + glob.glob(os.path.join(ROOT, "launch", "**", "*"), recursive=True)
           + [_module_path(m) for m in COMMANDS])
  found = []
  for path in sorted(p for p in files if os.path.isfile(p)):
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
    for number, line in enumerate(lines):
      m = re.match(r"\s*(?:\$ )?python -m (rsvlm_jax\.[\w.]+)(.*)", line)
      if not m or m.group(1) not in COMMANDS:
        continue
      text, more = m.group(2), iter(lines[number + 1:])
      while text.endswith("\\"):
        text = text[:-1] + " " + next(more, "")
      args = shlex.split(text.replace("[", " ").replace("]", " "), comments=True)  # [--optional flags] too.
      found.append((f"{os.path.relpath(path, ROOT)}:{number + 1}", m.group(1), args))
  return found


def test_documented_command_lines_parse(monkeypatch):
  """Each documented command line parses as written: its flags exist, their values are valid, an index
  subcommand gets only its own flags (the commands themselves run in their own tests)."""
  monkeypatch.chdir(ROOT)  # --config=configs/demo.py...
  lines = documented_command_lines()
  assert {m for _, m, _ in lines} >= set(KNOWN) - {"rsvlm_jax.config_schema"}  # Its line is inline prose.
  from rsvlm_jax.tools import index  # pylint: disable=g-import-not-at-top
  checks = {"rsvlm_jax.tools.index": lambda argv: index._check_flags(argv[1])}  # pylint: disable=protected-access
  failed = []
  for where, module, args in lines:
    mod = importlib.import_module(module)
    tool_flags = getattr(mod, "FLAGS", flags.FlagValues())
    code = cli.call(checks.get(module, lambda argv: 0), tool_flags, COMMANDS[module], args,
                    commands=getattr(mod, "COMMANDS", ()), positional=getattr(mod, "POSITIONAL", ()))
    if code:
      failed.append((where, args))
  assert not failed, failed


@pytest.mark.parametrize("module,args,message", [
    ("rsvlm_jax.tools.fit_dris_scorer", ["--config=configs/demo.py:runlocal=True", "--workdir=/nonexistent/run",
                                         "--out={tmp}"], "fit_dris_scorer: error: --out={tmp} is a directory"),
    ("rsvlm_jax.tools.fit_dris_scorer", ["--config=configs/demo.py:runlocal=True", "--workdir=/nonexistent/run",
                                         "--out={tmp}/f.txt/s.npz"], "is a file, not a folder"),
    ("rsvlm_jax.evaluate.captioning", ["--refs=/nonexistent/r.json", "--preds=/nonexistent/p.json",
                                       "--out=/nonexistent/m.json"],
     "captioning: error: --out=/nonexistent/m.json: folder /nonexistent does not exist"),
])
def test_output_paths_are_checked_before_the_slow_work(module, args, message, tmp_path, capsys, monkeypatch):
  """Before the teacher loads (fit_dris_scorer; its --out folder may be new) or the files are read (captioning)."""
  monkeypatch.chdir(ROOT)
  (tmp_path / "f.txt").write_text("")
  mod = importlib.import_module(module)
  args = [a.replace("{tmp}", str(tmp_path)) for a in args]
  assert cli.call(mod.main, mod.FLAGS, COMMANDS[module], args) == 2
  assert message.replace("{tmp}", str(tmp_path)) in capsys.readouterr().err


@pytest.mark.parametrize("module,args,message", [
    ("rsvlm_jax.main", ["--config=configs/demo.py:runlocal=True", "--config.input.bogus=1", "--workdir=w"],
     "main: error: flag --config=configs/demo.py:runlocal=True: Unknown config key 'input.bogus' (from "
     "--config.input.bogus=1): no key 'bogus' under input; known keys there: ['batch_size', "),
    ("rsvlm_jax.main", ["--config=configs/demo.py:steps=0", "--workdir=w"],
     "main: error: flag --config=configs/demo.py:steps=0: Config arg 'steps' must be a positive number of steps"),
    ("rsvlm_jax.main", ["--config=configs/no_such.py", "--workdir=w"],
     "main: error: flag --config=configs/no_such.py: Config file not found: configs/no_such.py"),
    ("rsvlm_jax.main", ["--config=configs/demo.py", "--workdir=w", "train"],
     "main: error: unexpected argument(s) train"),
    ("rsvlm_jax.sweep", ["--config=configs/sweeps/msvlam_ablation.py:bogus=1", "--workdir=w"],
     "sweep: error: flag --config=configs/sweeps/msvlam_ablation.py:bogus=1: Unknown config arg 'bogus'"),
    ("rsvlm_jax.tools.fit_dris_scorer", ["--config=configs/demo.py:steps=0", "--workdir=w", "--out=o.npz"],
     "fit_dris_scorer: error: flag --config=configs/demo.py:steps=0: Config arg 'steps' must be a positive number"),
    ("rsvlm_jax.build_dataset", ["--data_dir=d"],
     "build_dataset: error: missing argument(s) NAME (--help shows the usage)"),
    ("rsvlm_jax.build_dataset", ["rsicd", "rsitmd", "--data_dir=d"], "build_dataset: error: unexpected argument(s) "
     "rsitmd"),
    ("rsvlm_jax.build_dataset", ["no_such_set", "--data_dir=d"], "build_dataset: error: Unknown dataset "
     "'no_such_set'; known: ["),
])
def test_config_and_positional_errors_are_one_line(module, args, message, capsys, monkeypatch):
  """main/sweep/the tools' --config (config.define_config_flag): the config file's refusal, an unknown override
  key, a missing file; build_dataset: its NAME."""
  monkeypatch.chdir(ROOT)
  mod = importlib.import_module(module)
  assert cli.call(mod.main, mod.FLAGS, COMMANDS[module], args, positional=getattr(mod, "POSITIONAL", ())) == 2
  err = capsys.readouterr().err
  assert err.startswith(message) and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_config_overrides_parse_afresh_on_each_call(monkeypatch):
  """config_flags defines a flag per `--config.KEY` while parsing: a second call (same key, other value) and a
  call without it see their own values."""
  monkeypatch.chdir(ROOT)
  from rsvlm_jax import main  # pylint: disable=g-import-not-at-top
  seen = []
  for extra in (["--config.seed=3"], ["--config.seed=4"], []):
    args = ["--config=configs/demo.py:runlocal=True", *extra, "--workdir=w"]
    assert cli.call(lambda argv: seen.append(main.FLAGS.config.seed), main.FLAGS, "main", args) == 0
  assert seen == [3, 4, 0] and "config.seed" not in main.FLAGS
