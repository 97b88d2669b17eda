"""The one config loader: `configs/<file>.py[:preset]`, from the checkout or the installed package.

A spec names a Python file with `get_config(preset)` and an optional preset after a colon.
The file is looked for as given (relative to the working directory), then among the configs
shipped with rf_jax (`configs/` is installed as the package `rf_jax.configs`), then in the
source checkout's `configs/`, so `configs/phase1.py:tiny`, `phase1.py:tiny` and `phase1:tiny`
all work from any directory once rf_jax is installed.
"""
from __future__ import annotations

import ast
import difflib
import importlib.resources
import importlib.util
import os
import sys
from typing import Any, Iterable

import ml_collections

from rf_jax.errors import ConfigError

PACKAGE = "rf_jax.configs"
_CHECKOUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def packaged_dir() -> str:
  """The folder of the shipped configs: the installed package's, else the checkout's."""
  try:
    return str(importlib.resources.files(PACKAGE))
  except ModuleNotFoundError:
    return _CHECKOUT


def resolve(path: str) -> str:
  """The absolute path of a config file named as a path, `name.py` or `name`."""
  if os.path.isfile(path):
    return os.path.abspath(path)
  name = os.path.basename(path)
  name = name if name.endswith(".py") else name + ".py"
  candidate = os.path.join(packaged_dir(), name)
  if os.path.isfile(candidate):
    return candidate
  raise ConfigError(f"config file {path} not found (here or among rf_jax's configs: "
                    f"{', '.join(sorted(shipped()))})")


def shipped() -> list[str]:
  folder = packaged_dir()
  return [f for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_")]


def split_spec(spec: str) -> tuple[str, str]:
  """'configs/phase1.py:tiny' -> ('configs/phase1.py', 'tiny')."""
  path, _, preset = spec.partition(":")
  return path, preset


def load(spec: str) -> ml_collections.ConfigDict:
  """The ConfigDict of `file[:preset]`."""
  path, preset = split_spec(spec)
  full = resolve(path)
  module_name = "rf_jax_config_" + os.path.splitext(os.path.basename(full))[0]
  module_spec = importlib.util.spec_from_file_location(module_name, full)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except SyntaxError as e:
    raise ConfigError(f"config file {e.filename} line {e.lineno}: {e.msg}") from None
  try:
    return module.get_config(preset)
  except ValueError as e:  # an unknown preset: the config's own message says which exist
    raise ConfigError(str(e)) from None


def literal(text: str) -> Any:
  """A command-line value as Python reads it (numbers, tuples, booleans), else the string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def override(config: ml_collections.ConfigDict, overrides: dict[str, Any]):
  """Sets dotted keys (`train.steps`) in place; returns the config."""
  for key, value in overrides.items():
    *path, leaf = key.split(".")
    node = config
    for part in path:
      node = node[part]
    node[leaf] = value
  return config


def names(value: str | Iterable[str]) -> tuple[str, ...]:
  """A tuple of names from a tuple/list or comma-separated strings.

  The command line may type a list as `--config.data.tasks=copy,add`, which ml_collections
  reads as the one-element tuple ('copy,add',); this splits it.
  """
  items = [value] if isinstance(value, str) else list(value)
  return tuple(s.strip() for item in items for s in str(item).split(",") if s.strip())


def numbers(value: str | Iterable[float]) -> tuple[float, ...]:
  """A tuple of floats from a tuple/list or comma-separated strings."""
  return tuple(float(x) for x in names(value))


def check_field(config: ml_collections.ConfigDict, key: str) -> None:
  """Fails with the closest known name unless dotted `key` (`train.steps`) is a field."""
  node, done = config, []
  for part in key.split("[")[0].split("."):
    if not isinstance(node, ml_collections.ConfigDict):
      raise ConfigError(f"config field {'.'.join(done)} is a value, not a group; "
                        f"--config.{key} cannot be set")
    if part not in node:
      where = ".".join(done + [part])
      close = difflib.get_close_matches(part, list(node.keys()), n=1, cutoff=0.5)
      hint = (f"did you mean {'.'.join(done + close)}?" if close else
              f"known fields{' of ' + '.'.join(done) if done else ''}: {', '.join(sorted(node.keys()))}")
      raise ConfigError(f"unknown config field {where}; {hint}")
    node = node[part]
    done.append(part)


def override_keys(argv: list[str]) -> list[str]:
  """The dotted fields that `--config.a.b=v` (or `--noconfig.a.b` for a boolean) sets."""
  keys = []
  for arg in argv:
    for prefix in ("--config.", "--noconfig."):
      if arg.startswith(prefix):
        keys.append(arg[len(prefix):].split("=", 1)[0])
  return keys


def resolve_flag(argv: list[str], default: str | None = None) -> list[str]:
  """argv with `--config=SPEC` naming an existing file, as ml_collections' config flag needs.

  The config is loaded once here so that a missing file, an unknown preset, a syntax error
  or an unknown `--config.x.y` field exits with one line instead of a flags traceback.
  `default` is the spec used when argv has no `--config=`.
  """
  out, spec = [], default
  for arg in argv:
    if arg.startswith("--config="):
      path, preset = split_spec(arg[len("--config="):])
      try:
        path = resolve(path)
      except ConfigError as e:
        sys.exit(f"error: {e}")
      spec = f"{path}:{preset}" if preset else path
      arg = f"--config={spec}"
    out.append(arg)
  if spec is not None:
    try:
      config = load(spec)
      for key in override_keys(argv):
        check_field(config, key)
    except ConfigError as e:
      sys.exit(f"error: {e}")
  return out
