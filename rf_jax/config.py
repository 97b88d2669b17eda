"""The one config loader: `configs/<file>.py[:preset]`, from the checkout or the installed package.

A spec names a Python file with `get_config(preset)` and an optional preset after a colon.
The file is looked for as given (relative to the working directory), then among the configs
shipped with rf_jax (`configs/` is installed as the package `rf_jax.configs`), then in the
source checkout's `configs/`, so `configs/phase1.py:tiny`, `phase1.py:tiny` and `phase1:tiny`
all work from any directory once rf_jax is installed.
"""
from __future__ import annotations

import ast
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
  module_spec.loader.exec_module(module)
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


def resolve_flag(argv: list[str]) -> list[str]:
  """argv with `--config=SPEC` naming an existing file, as ml_collections' config flag needs;
  exits with a one-line error for a config that does not exist."""
  out = []
  for arg in argv:
    if arg.startswith("--config="):
      path, preset = split_spec(arg[len("--config="):])
      try:
        path = resolve(path)
      except ConfigError as e:
        sys.exit(f"error: {e}")
      arg = f"--config={path}" + (f":{preset}" if preset else "")
    out.append(arg)
  return out
