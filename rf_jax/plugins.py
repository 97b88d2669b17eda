"""Plugins by name: a small registry, and the import of user modules that register into one.

Tasks, objectives, probes and attention kernels are each looked up by the name a config
gives. A user adds one by writing a module that registers it and naming that module (a
dotted name or a .py path) in the config: `data.task_modules`, `objective.modules`,
`--probe_modules`. Nothing in rf_jax changes.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Callable, Generic, Iterable, TypeVar

from rf_jax.config import names
from rf_jax.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
  """name -> plugin, with a one-line error that lists the known names."""

  def __init__(self, kind: str, hint: str):
    self.kind, self.hint = kind, hint  # hint: how a user adds one, for the error message
    self._items: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    def add(item: T) -> T:
      if name in self._items and self._items[name] is not item:
        raise ValueError(f"{self.kind} name {name!r} is registered twice")
      self._items[name] = item
      return item
    return add

  def get(self, name: str) -> T:
    if name not in self._items:
      raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())} "
                        f"({self.hint})")
    return self._items[name]

  def names(self) -> list[str]:
    return list(self._items)

  def __contains__(self, name: str) -> bool:
    return name in self._items


def import_modules(modules: str | Iterable[str], what: str) -> None:
  """Imports user modules (dotted names or .py paths) so that their registrations run.

  `modules` is a list as configs hold them: a tuple, or "a,b" as typed on a command line
  (`rf_jax.config.names`). `what` names the config field, for the error message. A .py file
  is imported once per process under a name derived from its file name.
  """
  for entry in names(modules):
    if entry.endswith(".py"):
      if not os.path.exists(entry):
        raise ConfigError(f"{what}: file {entry} does not exist")
      name = "rf_jax_user_" + os.path.splitext(os.path.basename(entry))[0]
      if name in sys.modules:
        continue
      spec = importlib.util.spec_from_file_location(name, entry)
      module = importlib.util.module_from_spec(spec)
      sys.modules[name] = module
      try:
        spec.loader.exec_module(module)
      except SyntaxError as e:
        del sys.modules[name]
        raise ConfigError(syntax_error(what, e)) from None
    else:
      try:
        importlib.import_module(entry)
      except SyntaxError as e:
        raise ConfigError(syntax_error(what, e)) from None
      except ImportError as e:
        raise ConfigError(f"{what}: cannot import {entry!r} ({e})") from None


def syntax_error(what: str, e: SyntaxError) -> str:
  line = (e.text or "").strip()
  return (f"{what}: syntax error in {e.filename} line {e.lineno}: {e.msg}"
          + (f" ({line})" if line else ""))
