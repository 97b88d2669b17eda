"""Judging a program by running it: one runner for every esolang probe and benchmark.

`judge(language, program, tests, limits)` runs a program on each test's input with the
language's interpreter (rf_jax/esolang.py for Brainf*ck, rf_jax/befunge.py for Befunge-93
and -98) under a step limit and a time limit, and counts the tests whose output is right.
Output is compared after dropping trailing whitespace and control characters, as
EsoLang-Bench does (Befunge's `.` prints a space after every number). A run that stops on
an instruction the interpreter does not implement makes the judgement `unsupported`: the
caller reports it by name instead of scoring the program as wrong.

A vocabulary without `"`, `\\` or `` ` `` (phase 1's symbols) cannot show or write a Befunge
program that uses them: `spelling(vocab)` spells them `Q`, `S` and `G` in prompts, and reads
a model's program back through the same table before it runs.
"""
from __future__ import annotations

import dataclasses
import time

from rf_jax.befunge import run_befunge
from rf_jax.esolang import BFError, run_bf

LANGUAGES = ("brainfuck", "befunge93", "befunge98")
SPELLED = (('"', "Q"), ("\\", "S"), ("`", "G"))  # (Befunge character, its stand-in)


@dataclasses.dataclass(frozen=True)
class Limits:
  max_steps: int = 20_000
  time_limit_s: float = 0.1  # per run, on top of the step limit


@dataclasses.dataclass(frozen=True)
class Outcome:
  """One run: what it printed (bytes as latin-1 text) and how it ended."""
  output: str
  status: str        # halted | step_limit | time_limit | error | unsupported
  message: str = ""


@dataclasses.dataclass(frozen=True)
class Judgement:
  passed: int
  total: int
  statuses: tuple[str, ...]  # how each test's run ended
  unsupported: str = ""      # set when a run met an instruction the interpreter lacks

  @property
  def score(self) -> float:
    """The fraction of tests passed: partial credit."""
    return self.passed / self.total if self.total else 0.0

  @property
  def exact(self) -> bool:
    return self.total > 0 and self.passed == self.total


class Stopwatch:
  """Accumulates the seconds spent interpreting, for the evaluator's timed split."""

  def __init__(self):
    self.seconds = 0.0
    self.runs = 0


def run_program(language: str, program: str, input_text: str, limits: Limits) -> Outcome:
  """Runs `program` on `input_text`; never raises for anything the program does."""
  data = input_text.encode("utf-8")
  if language == "brainfuck":
    try:
      r = run_bf(program, data, limits.max_steps, time_limit_s=limits.time_limit_s)
    except BFError as e:
      return Outcome("", "error", str(e))
    status = "halted" if r.halted else ("time_limit" if r.timed_out else "step_limit")
    return Outcome(r.output.decode("latin-1"), status)
  if language in ("befunge93", "befunge98"):
    r = run_befunge(program, data, limits.max_steps, dialect=language[-2:],
                    time_limit_s=limits.time_limit_s)
    return Outcome(r.output.decode("latin-1"), r.status, r.message)
  raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")


def trimmed(text: str) -> str:
  """`text` without trailing whitespace or control characters."""
  while text and (text[-1].isspace() or ord(text[-1]) < 32 or ord(text[-1]) == 127):
    text = text[:-1]
  return text


def outputs_match(expected: str, got: str) -> bool:
  return trimmed(got) == trimmed(expected)


def judge(language: str, program: str, tests, limits: Limits = Limits(),
          stopwatch: Stopwatch | None = None) -> Judgement:
  """Runs `program` on every (input, expected output) of `tests`."""
  t0 = time.perf_counter()
  passed, statuses, unsupported = 0, [], ""
  for inp, expected in tests:
    out = run_program(language, program, inp, limits)
    statuses.append(out.status)
    if out.status == "unsupported":
      unsupported = unsupported or out.message
    # Only a run that ended by itself passes: one cut short by a limit, or by an error,
    # does not, whatever it printed before.
    passed += out.status == "halted" and outputs_match(expected, out.output)
  if stopwatch is not None:
    stopwatch.seconds += time.perf_counter() - t0
    stopwatch.runs += len(statuses)
  return Judgement(passed, len(statuses), tuple(statuses), unsupported)


def encodable(vocab, text: str) -> bool:
  try:
    vocab.encode(text)
  except ValueError:
    return False
  return True


@dataclasses.dataclass(frozen=True)
class Spelling:
  """How Befunge's characters are written in a vocabulary: (character, written as) pairs."""
  pairs: tuple[tuple[str, str], ...] = ()

  def write(self, program: str) -> str:
    table = dict(self.pairs)
    return "".join(table.get(c, c) for c in program)

  def read(self, text: str) -> str:
    table = {w: c for c, w in self.pairs}
    return "".join(table.get(c, c) for c in text)


def spelling(vocab) -> Spelling:
  """Stand-ins for the Befunge characters `vocab` cannot encode."""
  return Spelling(tuple((c, w) for c, w in SPELLED if not encodable(vocab, c)))
