"""Built-in algorithmic task families: copy, reverse, sort, add, parity, dyck.

Each prompt starts with a short tag ("copy:", "rev:", ...) so one model can be trained on
a mixture. Level 1 is deliberately tiny (answers of 1-3 symbols) so a small model learns it
in minutes; each level lengthens inputs, which is what makes the families harder.
All randomness comes from the `rng` argument, so `make_example` is reproducible.
"""
from __future__ import annotations

import string

import numpy as np

from rf_jax.tasks.base import (Example, Task, check_level, position_agreement, positional_credit,
                               register)

BUILTIN = ("copy", "reverse", "sort", "add", "parity", "dyck")

_LETTERS = string.ascii_lowercase
_BRACKETS = ("()", "[]", "{}", "<>")  # level l uses the first l pairs


def _length(rng: np.random.Generator, level: int, lo: int = 1) -> int:
  # [2l-1, 3l]: ranges overlap between levels but both ends rise, so the mean strictly grows.
  return int(rng.integers(max(lo, 2 * level - 1), 3 * level + 1))


def _draw(rng: np.random.Generator, alphabet: str, n: int) -> str:
  return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))


@register
class Copy(Task):
  name = "copy"
  max_level = 4

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    s = _draw(rng, _LETTERS, _length(rng, level))
    return Example(f"copy:{s}", s)


@register
class Reverse(Task):
  name = "reverse"
  max_level = 4

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    s = _draw(rng, _LETTERS, _length(rng, level))
    return Example(f"rev:{s}", s[::-1])


@register
class Sort(Task):
  name = "sort"
  max_level = 4

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    s = _draw(rng, string.digits, _length(rng, level))
    return Example(f"sort:{s}", "".join(sorted(s)))


def _operand(rng: np.random.Generator, level: int) -> int:
  # Uniform digit count first, then a value with exactly that many digits: drawing the
  # value uniformly would make almost every operand maximal-length.
  n = int(rng.integers(1, level + 2))
  return int(rng.integers(0 if n == 1 else 10 ** (n - 1), 10 ** n))


@register
class Add(Task):
  """Trace: one `x+y+c=s` per column, units first, joined by ';'.

  x, y are the column's digits (0 past the end of the shorter operand), c the carry in, s the
  column sum (its tens digit is the next carry). 57+68 -> "7+8+0=15;5+6+1=12", answer "125".
  """
  name = "add"
  max_level = 4

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    a, b = _operand(rng, level), _operand(rng, level)
    da, db = str(a)[::-1], str(b)[::-1]
    cols, carry = [], 0
    for i in range(max(len(da), len(db))):
      x = int(da[i]) if i < len(da) else 0
      y = int(db[i]) if i < len(db) else 0
      s = x + y + carry
      cols.append(f"{x}+{y}+{carry}={s}")
      carry = s // 10
    return Example(f"add:{a}+{b}", str(a + b), ";".join(cols))

  def score(self, example: Example, output: str) -> float:
    # Sum digits line up at the units end: a dropped leading digit should cost one
    # position, not shift every other digit out of place.
    return positional_credit(example.answer[::-1], output[::-1])

  def token_rewards(self, example: Example, output: str) -> list[float]:
    return position_agreement(example.answer, output, from_end=True)


@register
class Parity(Task):
  """Trace: the parity of each prefix, e.g. bits "0110" -> "0100"; its last symbol is the answer."""
  name = "parity"
  max_level = 4

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    bits = _draw(rng, "01", _length(rng, level, lo=2))  # one bit would just be copy
    prefix = np.cumsum([b == "1" for b in bits]) % 2
    trace = "".join(str(p) for p in prefix)
    return Example(f"par:{bits}", trace[-1], trace)


@register
class Dyck(Task):
  """Close an unbalanced bracket prefix with the shortest suffix (innermost closer first).

  Trace: the open stack (bottom first) after each prefix symbol, joined by ','; an empty
  stack is an empty field. "([(" -> "(,([,([(" with answer ")])".
  """
  name = "dyck"
  max_level = 4

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    pairs = _BRACKETS[:level]
    n = _length(rng, level)
    prefix, stack, states = [], [], []
    for i in range(n):
      # Never close the last open bracket on the final step: the answer must be non-empty.
      can_close = len(stack) > (1 if i == n - 1 else 0)
      if can_close and rng.random() < 0.5:
        prefix.append(stack.pop()[1])
      else:
        pair = pairs[int(rng.integers(0, len(pairs)))]
        stack.append(pair)
        prefix.append(pair[0])
      states.append("".join(p[0] for p in stack))
    answer = "".join(p[1] for p in reversed(stack))
    return Example(f"dyck:{''.join(prefix)}", answer, ",".join(states))
