"""A phase is data; there is one way to run it.

A `Phase` names its workdir under an experiment's root, its config spec
(`phase2.py[:preset]`, resolved among rf_jax's configs, so it works outside a checkout), the
phase it starts from (its checkpoint becomes `--config.init_from`) and dotted config
overrides. Running a phase is always

  python -m rf_jax.main --config=<resolved file>[:presets] --workdir=<root>/<name>
      [--config.init_from=<root>/<parent>] [--config.<key>=<value> ...] [extra flags]

in its own process, announced on the console. A finished run skips itself when started
again (the trainer sees its final checkpoint), so rerunning an experiment resumes it.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any, Iterable, Sequence

from rf_jax import config as config_lib
from rf_jax import objectives
from rf_jax.errors import ConfigError
from rf_jax.train_state import model_config
from rf_jax.vocab import phase1_vocab, text_vocab


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str                     # workdir name under the experiment's root
  config: str                   # config spec: "phase2.py", "phase3.py:baseline"
  parent: str | None = None     # the phase whose checkpoint this one starts from
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # "train.steps" -> 5

  def with_overrides(self, overrides: dict[str, Any]) -> "Phase":
    """A copy whose overrides are `overrides` then its own (its own win)."""
    return dataclasses.replace(self, overrides={**overrides, **self.overrides})

  def load(self, preset: str = ""):
    """The phase's ConfigDict under the experiment-wide `preset`, overrides applied."""
    cfg = config_lib.load(with_preset(self.config, preset))
    return config_lib.override(cfg, typed(cfg, self.overrides))


def planned_cost(config) -> tuple[float, float]:
  """(packed-row tokens, training FLOPs) of one step of a phase config, from its objective.

  The vocabulary is the phase's layout; a sentencepiece phase is counted as bytes, since its
  pieces are only known once trained."""
  vocab = phase1_vocab() if config.data.tokenizer == "chars" else text_vocab("bytes")
  return objectives.planned_cost(config, model_config(config, vocab))


def planned_flops(config) -> float:
  return planned_cost(config)[1]


def with_preset(spec: str, preset: str) -> str:
  """The spec with an experiment-wide preset before the phase's own: ("phase3.py:baseline",
  "tiny") -> "phase3.py:tiny,baseline"."""
  path, own = config_lib.split_spec(spec)
  presets = ",".join(filter(None, [preset, own]))
  return f"{path}:{presets}" if presets else path


def resolved(spec: str) -> str:
  """The spec with its file made absolute (found among rf_jax's configs if need be)."""
  path, presets = config_lib.split_spec(spec)
  full = config_lib.resolve(path)
  return f"{full}:{presets}" if presets else full


def typed(cfg, overrides: dict[str, Any]) -> dict[str, Any]:
  """Overrides made to fit the config: "a,b" becomes ("a", "b") where the config holds a tuple."""
  out = {}
  for key, value in overrides.items():
    node = cfg
    for part in key.split("."):
      node = node.get(part) if hasattr(node, "get") else None
    out[key] = config_lib.names(value) if isinstance(node, tuple) and isinstance(value, str) else value
  return out


def flag_value(value) -> str:
  """A value as `--config.key=` parses it: tuples as Python literals ("('a', 'b')", "()")."""
  return repr(tuple(value)) if isinstance(value, (tuple, list)) else str(value)


def argv(phase: Phase, root: str, preset: str = "", extra: Sequence[str] = (),
         python: str = sys.executable) -> list[str]:
  """The command line that runs `phase` in <root>/<phase.name>."""
  out = [python, "-m", "rf_jax.main", f"--config={resolved(with_preset(phase.config, preset))}",
         f"--workdir={root}/{phase.name}"]
  if phase.parent:
    out.append(f"--config.init_from={root}/{phase.parent}")
  out += [f"--config.{k}={flag_value(v)}" for k, v in phase.overrides.items()]
  return out + list(extra)


def check_order(phases: Iterable[Phase]) -> tuple[Phase, ...]:
  """The phases, each after the phase it starts from; names unique."""
  seen: set[str] = set()
  phases = tuple(phases)
  for p in phases:
    if p.name in seen:
      raise ConfigError(f"phase {p.name} is declared twice; give each phase its own name")
    if p.parent and p.parent not in seen:
      raise ConfigError(f"phase {p.name} starts from {p.parent}, which is not declared before "
                        "it; declare the parent first")
    seen.add(p.name)
  return phases


def lineage(phases: Iterable[Phase], name: str) -> tuple[Phase, ...]:
  """The chain of phases that ends in `name`, first phase first."""
  by_name = {p.name: p for p in phases}
  if name not in by_name:
    raise ConfigError(f"no phase {name}; declared: {', '.join(by_name)}")
  chain = [by_name[name]]
  while chain[0].parent:
    chain.insert(0, by_name[chain[0].parent])
  return tuple(chain)


def run_logged(label: str, command: list[str]) -> int:
  """Runs one command in its own process, announced on the console; its exit status, with a
  one-line error when it failed (finished runs skip themselves on a rerun)."""
  print(f"=== {label}: {' '.join(command[1:])}", flush=True)
  rc = subprocess.call(command)
  if rc:
    print(f"error: {label} failed (exit {rc}); fix it and rerun the same command: finished runs "
          "are not repeated", file=sys.stderr)
  return rc


def run_all(phases: Iterable[Phase], root: str, preset: str = "", extra: Sequence[str] = (),
            label: str = "", dry_run: bool = False) -> int:
  """Runs the phases in the order given (each in its own process); stops at the first failure.
  A phase whose parent is not among them starts from the parent's workdir as it is."""
  for p in phases:
    command = argv(p, root, preset, extra)
    name = f"{label}{p.name}"
    if dry_run:
      print(f"{name}: {' '.join(command[1:])}", flush=True)
      continue
    rc = run_logged(name, command)
    if rc:
      return rc
  return 0
