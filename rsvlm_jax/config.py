"""Config helpers: typed `key=value` args for `get_config(arg)` and training durations."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from typing import Any

from absl import flags
import ml_collections
from ml_collections import config_flags


class _AutoBool:
  """The default of a bool arg left to the config unless given: `auto` (or nothing) parses to None."""

  def __repr__(self):
    return "AUTO_BOOL"


AUTO_BOOL = _AutoBool()


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses `"key=val,key2=val2"` into a ConfigDict typed like `defaults`.

  Every key must appear in `defaults`; its value is converted to the type of the default
  (bools accept true/false/1/0; an AUTO_BOOL default takes auto/true/false and is None unless given).
  An unknown key raises a ValueError naming it.
  """
  out = ml_collections.ConfigDict({k: None if v is AUTO_BOOL else v for k, v in defaults.items()})
  if not arg:
    return out
  for item in arg.split(","):
    if not item.strip():
      continue
    if "=" not in item:
      raise ValueError(f"Config arg {item!r} is not of the form key=value (known keys: {sorted(defaults)})")
    key, value = (s.strip() for s in item.split("=", 1))
    if key not in defaults:
      raise ValueError(f"Unknown config arg {key!r}; known keys: {sorted(defaults)}")
    out[key] = _convert(key, value, defaults[key])
  return out


def _convert(key: str, value: str, default: Any) -> Any:
  if default is AUTO_BOOL:
    choice = {"auto": None, "true": True, "1": True, "false": False, "0": False}.get(value.lower(), AUTO_BOOL)
    if choice is AUTO_BOOL:
      raise ValueError(f"Config arg {key!r} expects auto, true or false, got {value!r}")
    return choice
  if isinstance(default, bool):
    low = value.lower()
    if low in ("true", "1", "yes"):
      return True
    if low in ("false", "0", "no"):
      return False
    raise ValueError(f"Config arg {key!r} expects a bool, got {value!r}")
  if isinstance(default, int):
    return int(value)
  if isinstance(default, float):
    return float(value)
  if isinstance(default, (tuple, list)):
    return type(default)(ast.literal_eval(value) if value.startswith(("(", "[")) else
                         [type(default[0])(v) for v in value.split(";")] if default else value.split(";"))
  return value


def steps_from(total: int | None = None, *, epochs: float | None = None, examples: int | None = None,
               dataset_size: int | None = None, batch_size: int = 1) -> int:
  """Converts a duration given in steps, epochs or examples into a number of steps."""
  given = [x is not None for x in (total, epochs, examples)]
  if sum(given) != 1:
    raise ValueError("Give exactly one of steps, epochs, examples")
  if total is not None:
    return int(total)
  if examples is not None:
    return max(1, int(examples) // batch_size)
  if dataset_size is None:
    raise ValueError("epochs needs dataset_size")
  return max(1, int(epochs * dataset_size) // batch_size)


def load_config(spec: str) -> ml_collections.ConfigDict:
  """'path/to/file.py:args' -> the ConfigDict its `get_config(args)` returns (paths relative to the CWD)."""
  path, _, arg = spec.partition(":")
  if not os.path.exists(path):
    raise FileNotFoundError(f"Config file not found: {path}")
  module_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def import_config(name: str):
  """The module configs/NAME.py, for a config that composes another by calling its functions (e.g.
  `import_config("demo").config(...)`): `configs.NAME` when the repository root is importable (the documented
  commands run from it), else loaded from config_path (one module per name)."""
  module_name = f"configs.{name}"
  if module_name in sys.modules:
    return sys.modules[module_name]
  try:
    return importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name not in ("configs", module_name):
      raise
  module_spec = importlib.util.spec_from_file_location(module_name, config_path(f"{name}.py"))
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[module_name] = module
  module_spec.loader.exec_module(module)
  return module


def config_path(name: str) -> str:
  """Path of a config shipped in the repository's configs/ folder."""
  return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", name)


def missing_key(config: ml_collections.ConfigDict, dotted: str) -> str | None:
  """None when `dotted` ("a.b.c") names a key of `config`; else which part is missing and the keys there."""
  node, path = config, []
  for part in dotted.split("."):
    keys = list(node.keys()) if isinstance(node, (ml_collections.ConfigDict, dict)) else []
    if part not in keys:
      where = ".".join(path) or "the top level"
      return f"no key {part!r} under {where}; known keys there: {sorted(keys)}"
    node = node[part]
    path.append(part)
  return None


def set_key(config: ml_collections.ConfigDict, dotted: str, value: Any, source: str) -> None:
  """Sets an existing dotted key; an unknown one raises KeyError "<source> 'a.b': <what is missing>"."""
  why = missing_key(config, dotted)
  if why:
    raise KeyError(f"{source} {dotted!r}: {why}")
  *parents, leaf = dotted.split(".")
  node = config
  for p in parents:
    node = node[p]
  node[leaf] = value


def unknown_override(config: ml_collections.ConfigDict, argv: list[str], flag: str = "config") -> str | None:
  """The first `--config.a.b=v` override (of `--FLAG`) in argv whose dotted key the config lacks, as an error.

  ml_collections reports such a key as a bare KeyError deep in flag parsing; this names it, the flag it
  came from and the keys that do exist at that level. Returns None when every override names a real key.
  """
  prefix = f"--{flag}."
  for arg in argv:
    if not arg.startswith(prefix):
      continue
    dotted = arg[len(prefix):].split("=", 1)[0]
    why = missing_key(config, dotted)
    if why:
      return f"Unknown config key {dotted!r} (from {arg}): {why}"
  return None


def define_config_flag(name: str, help_string: str, *, flag_values: flags.FlagValues,
                       lock_config: bool = True) -> flags.FlagHolder:
  """config_flags.DEFINE_config_file (`--NAME=file.py[:args]`, then `--NAME.a.b=v` overrides) in `flag_values`,
  whose refusals are flag errors of one line (runtime/cli.py: `TOOL: error: ...`, exit 2), with no traceback:
  a missing file, an arg the config file refuses (its own message), an override naming no key of the config
  (the keys there). A config file that breaks otherwise (a bug in it) still shows its traceback."""
  holder = config_flags.DEFINE_config_file(name, None, help_string, flag_values=flag_values,
                                           lock_config=lock_config)
  flag_values[name].parser = _ConfigFileParser(name, lock_config)
  return holder


class _ConfigFileParser(flags.ArgumentParser):
  """Loads the config with load_config, each refusal a ValueError (absl: `flag --NAME=SPEC: MESSAGE`)."""

  def __init__(self, name: str, lock_config: bool):
    self.name, self._lock_config = name, lock_config

  def flag_type(self) -> str:
    return "config object"

  def parse(self, path):
    try:
      config = load_config(path)
    except KeyError as e:
      raise ValueError(e.args[0] if e.args else str(e)) from None
    except (ValueError, FileNotFoundError) as e:
      raise ValueError(str(e)) from None
    message = unknown_override(config, sys.argv, flag=self.name)  # The overrides config_flags reads: sys.argv's.
    if message:
      raise ValueError(message)
    if self._lock_config:
      config.lock()
    return config
