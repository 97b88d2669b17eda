"""Task contract: a registered family of generated problems with difficulty levels.

A task turns `(rng, level)` into an `Example` and scores a model's output with
partial credit. Items are addressable: `make_example(task, seed, index, level)`
always returns the same example, which is what makes data resumable and
evaluation sets reproducible without storing them.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import ClassVar

import numpy as np

from rf_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Example:
  prompt: str
  answer: str
  trace: str = ""  # optional step-by-step working, trained on but not scored


class Task:
  """Base class for a task family. Subclasses set `name`, `max_level` and implement `generate`."""

  name: ClassVar[str] = ""
  max_level: ClassVar[int] = 4  # levels are 1..max_level; higher levels are harder
  # True when many outputs are right (a program judged by running it): evaluation then
  # counts an output as an exact match when it scores 1.0, not when it equals the answer.
  many_answers: ClassVar[bool] = False

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    raise NotImplementedError

  def score(self, example: Example, output: str) -> float:
    return positional_credit(example.answer, output)

  def answer_alphabet(self) -> str:
    """Every character an answer of this family can hold, sorted: the action space of reward
    training with `rl.answer_alphabet`. The default reads 256 answers per level; a family
    whose answers can hold characters that rarely occur overrides it."""
    return _sampled_alphabet(self)

  def token_rewards(self, example: Example, output: str) -> list[float]:
    """Credit for each character of `output`, then one for where it stopped: len(output) + 1
    values, for reward per token (`rl.credit = token`).

    The default: with the positional scorer, whether each character is the answer's at its
    position, and whether the output stops at the answer's length; with a scorer of its own,
    that score for every character (no finer credit is known). A family overrides it when
    it knows better.
    """
    if type(self).score is Task.score:
      return position_agreement(example.answer, output)
    return [self.score(example, output)] * (len(output) + 1)


_ALPHABETS: dict[str, str] = {}


def _sampled_alphabet(task: Task) -> str:
  if task.name not in _ALPHABETS:
    seen = {c for level in range(1, task.max_level + 1) for i in range(256)
            for c in make_example(task, 0, i, level).answer}
    _ALPHABETS[task.name] = "".join(sorted(seen))
  return _ALPHABETS[task.name]


def position_agreement(answer: str, output: str, from_end: bool = False) -> list[float]:
  """1.0 for each character of `output` equal to the answer's at its position (counted from the
  end with `from_end`, as digits of a sum line up), then 1.0 if the lengths agree."""
  a, o = (answer[::-1], output[::-1]) if from_end else (answer, output)
  hits = [float(i < len(a) and c == a[i]) for i, c in enumerate(o)]
  return (hits[::-1] if from_end else hits) + [float(len(output) == len(answer))]


def positional_credit(answer: str, output: str) -> float:
  """Fraction of answer positions the output gets right; 1.0 only for an exact match."""
  if output == answer:
    return 1.0
  n = max(len(answer), len(output), 1)
  hits = sum(a == b for a, b in zip(answer, output))
  return min(hits / n, 1.0 - 1.0 / (2 * n))


_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
  """Class decorator: makes a task family available by its `name` in configs."""
  if not cls.name:
    raise ValueError(f"task class {cls.__qualname__} needs a non-empty `name`")
  if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
    raise ValueError(f"task name {cls.name!r} is registered twice")
  _REGISTRY[cls.name] = cls
  return cls


def names() -> list[str]:
  return sorted(_REGISTRY)


def get(name: str) -> Task:
  if name not in _REGISTRY:
    raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(names())} "
                     "(or import your module via config.data.task_modules)")
  return _REGISTRY[name]()


def check_level(task: Task, level: int) -> None:
  if not 1 <= level <= task.max_level:
    raise ConfigError(f"task {task.name!r} has levels 1..{task.max_level}, got level {level}")


def example_rng(name: str, seed: int, index: int, level: int) -> np.random.Generator:
  # crc32, not hash(): Python's str hash is salted per process.
  return np.random.default_rng([seed, index, level, zlib.crc32(name.encode())])


def make_example(task: Task, seed: int, index: int, level: int) -> Example:
  return task.generate(example_rng(task.name, seed, index, level), level)
