"""Befunge output prediction: what does a generated Befunge-93 program print?

The Befunge counterpart of the `brainfuck` probe. Each prompt carries the language's
description (rf_jax/befunge.py: DOC_93, in the run's spelling) and a generated program on
the lines after `bef:`; the answer is what it prints, spaces included (`.` prints a number
and a space). Programs use digits, `+ - * : ! $ . , _ @` and arrows, never a character a
vocabulary might lack, and are checked to halt. By level:

1. one number printed by a short straight line;
2. two or three prints, with `:` (dup), `!` (not), `$` (drop) and `,` (a digit as a char);
3. the same on two rows: the line turns down (`v`) and comes back leftwards (`<`);
4. a counted loop (`_` and `^`) printing k, k-1, ..., 1, after a straight-line print.
"""
from __future__ import annotations

import numpy as np

from rf_jax.befunge import DOC_93, run_befunge
from rf_jax.esolang_judge import spelling
from rf_jax.greedy import EVAL_SEED_OFFSET, Item
from rf_jax.probes.base import Panel, Probe, fmt, mean, register
from rf_jax.tasks.base import Example, positional_credit

MAX_LEVEL = 4
MAX_PROGRAM_LEN = 80


def _push(rng: np.random.Generator, v: int) -> str:
  """Code pushing v (0-81): a digit, or a product of two digits plus a digit."""
  if v <= 9:
    return str(v)
  a = int(rng.integers(-(-v // 9), 10))  # a*9 >= v, so b = v // a is a digit
  b, c = v // a, v % a
  return f"{a}{b}*" + (f"{c}+" if c else "")


def _segment(rng: np.random.Generator, kinds: str) -> str:
  """One straight-line piece that prints something and leaves the stack as it found it."""
  kind = kinds[int(rng.integers(len(kinds)))]
  v = int(rng.integers(0, 30))
  if kind == "int":
    return _push(rng, v) + "."
  if kind == "char":  # a digit printed as a character: its code is 48 + d
    return _push(rng, 48 + int(rng.integers(10))) + ","
  if kind == "dup":
    return _push(rng, v) + ":.."
  if kind == "not":
    return _push(rng, int(rng.integers(0, 3))) + "!."
  return _push(rng, v) + _push(rng, int(rng.integers(0, 10))) + "$."  # drop


def _two_rows(code: str, rng: np.random.Generator) -> str:
  """`code` (ending in @) laid out over two rows: right, down, then back left."""
  k = int(rng.integers(1, len(code)))
  first, rest = code[:k], code[k:]
  turn = max(len(first), len(rest))
  return first + " " * (turn - len(first)) + "v\n" + " " * (turn - len(rest)) + rest[::-1] + "<"


def _loop(rng: np.random.Generator) -> str:
  """A prefix print, then k, k-1, ..., 1 printed by a loop on two rows."""
  k = int(rng.integers(2, 6))
  show = ":." if rng.random() < 0.5 else ":68*+,"
  row0 = _segment(rng, ("int", "char")) + f"{k}>" + show + "1-:"
  below = row0.index(">")
  return row0 + "v\n" + " " * below + "^" + " " * (len(row0) - below - 1) + "_@"


def generate_program(rng: np.random.Generator, level: int) -> tuple[str, str]:
  """Returns (program, what it prints)."""
  if not 1 <= level <= MAX_LEVEL:
    raise ValueError(f"befunge levels are 1..{MAX_LEVEL}, got {level}")
  if level == 1:
    program = _segment(rng, ("int",)) + "@"
  elif level == 4:
    program = _loop(rng)
  else:
    kinds = ("int", "char", "dup", "not", "drop")
    code = "".join(_segment(rng, kinds) for _ in range(int(rng.integers(2, 4)))) + "@"
    program = code if level == 2 else _two_rows(code, rng)
  r = run_befunge(program, max_steps=10_000)
  # Construction guarantees these; a failure here is a generator bug, not bad luck.
  if not r.halted or len(program) > MAX_PROGRAM_LEN or not r.output:
    raise RuntimeError(f"befunge generator bug: {program!r} -> {r}")
  return program, r.output.decode("ascii")


def described_example(rng: np.random.Generator, level: int, doc: str = DOC_93) -> Example:
  program, output = generate_program(rng, level)
  return Example(f"{doc}\nbef:\n{program}", output, "")


def _credit(example: Example, output: str) -> float:
  return positional_credit(example.answer, output)


@register("befunge")
class Befunge(Probe):
  metrics = ("befunge",)

  def items(self, ctx):
    doc = spelling(ctx.run.vocab).write(DOC_93)
    return [Item((level,), described_example(
        np.random.default_rng([ctx.seed + EVAL_SEED_OFFSET, i, level, 13]), level, doc),
        _credit) for level in range(1, MAX_LEVEL + 1) for i in range(ctx.n_per)]

  def summarize(self, ctx, results):
    levels = {str(lvl): r for (lvl,), r in sorted(results.items())}
    return {"levels": levels, "mean": mean(r["exact"] for r in levels.values())}

  def headline(self, section):
    return {"befunge": section["mean"]}

  def table(self, section):
    return ["befunge output prediction: " +
            " ".join(f"L{lvl}:{r['exact']:.2f}" for lvl, r in section["levels"].items()) +
            f"   mean {fmt(section['mean']).strip()}"]

  def panels(self, section):
    lv = sorted(section["levels"], key=int)
    return [Panel("befunge", [int(lvl) for lvl in lv],
                  [section["levels"][lvl]["exact"] for lvl in lv])]
