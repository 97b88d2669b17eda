"""Program writing in a familiar language: the stack machine that the `stack` family runs.

`stack` asks what a program leaves on the stack; `stack_write` asks for a program that
leaves a wanted stack, so a model can learn to *write* programs in a language it trains on,
and the esolang probes (rf_jax/probes/esolang_write.py) measure whether that transfers to
writing Brainf*ck and Befunge, which it never trains on.

    wstk:37=94   ->   33*77+   (3*3 = 9, then 7+7 = 14 = 4 mod 10: the stack is 9,4)

Any program that pushes only the digits 3 and 7 and leaves 9,4 (bottom first) is right.

The machine is `stack`'s: a digit pushes itself; `+` and `*` pop b then a and push
(a+b)%10 and (a*b)%10; `d` duplicates the top, `s` swaps the top two, `p` drops the top. A
program may push only the listed digits, so most targets need arithmetic. Many programs are
right: the score runs the output, 1.0 when the final stack is the wanted one, positional
partial credit on the final stack otherwise, 0 for a program that cannot run (an unknown
character, a digit not allowed, popping an empty stack). The reference answer is canonical,
so next-token training has one target: for each wanted digit in turn, the shortest program
that makes it from nothing (the first in the order digits, `d s p + *`).

Levels: one wanted digit from three allowed ones; two digits from three; three from two;
four from two. The family is opt-in (not in any config's default `data.tasks`).
"""
from __future__ import annotations

import functools
import re

import numpy as np

from rf_jax.tasks.base import Example, Task, check_level, positional_credit, register

OPS = "dsp+*"
_NEED = {"d": 1, "s": 2, "p": 1, "+": 2, "*": 2}
_ALLOWED = (3, 3, 2, 2)  # allowed digits per level
_WANTED = (1, 2, 3, 4)   # wanted digits per level
_MAX_SEGMENT = 6         # the longest program searched for one digit
_CAP = 4                 # the deepest stack a segment may build


def step(stack: tuple[int, ...], op: str) -> tuple[int, ...] | None:
  """The stack after `op`; None on underflow."""
  if op.isdigit():
    return stack + (int(op),)
  if len(stack) < _NEED[op]:
    return None
  if op == "d":
    return stack + stack[-1:]
  if op == "s":
    return stack[:-2] + (stack[-1], stack[-2])
  if op == "p":
    return stack[:-1]
  a, b = stack[-2], stack[-1]
  return stack[:-2] + (((a + b) if op == "+" else (a * b)) % 10,)


def run(program: str, allowed: str) -> list[tuple[int, ...]] | None:
  """The stack after each instruction, or None if the program cannot run."""
  stack: tuple[int, ...] = ()
  states = []
  for c in program:
    if (c.isdigit() and c not in allowed) or not (c.isdigit() or c in OPS):
      return None
    stack = step(stack, c)
    if stack is None:
      return None
    states.append(stack)
  return states


@functools.lru_cache(maxsize=None)
def segments(allowed: str) -> dict[int, str]:
  """digit -> the shortest program (first in op order) that makes it from an empty stack."""
  order = sorted(allowed) + list(OPS)
  found: dict[int, str] = {}
  frontier, seen = [((), "")], {()}
  for _ in range(_MAX_SEGMENT):
    nxt = []
    for stack, prog in frontier:
      for op in order:
        new = step(stack, op)
        if new is None or new in seen or len(new) > _CAP:
          continue
        seen.add(new)
        nxt.append((new, prog + op))
        if len(new) == 1:
          found.setdefault(new[0], prog + op)
    frontier = nxt
  return found


def _parse(prompt: str) -> tuple[str, str]:
  """(allowed digits, wanted stack) from the prompt's last line, whatever its separator."""
  m = re.search(r":(\d+)\D(\d+)$", prompt.rsplit("\n", 1)[-1])
  if not m:
    raise ValueError(f"not a stack_write prompt: {prompt!r}")
  return m.group(1), m.group(2)


@register
class StackWrite(Task):
  name = "stack_write"
  max_level = 4
  many_answers = True

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    allowed = "".join(sorted(str(d) for d in rng.choice(10, _ALLOWED[level - 1], replace=False)))
    ways = segments(allowed)
    need_math = sorted(set(ways) - {int(d) for d in allowed})
    wanted = []
    for _ in range(_WANTED[level - 1]):
      pool = need_math if need_math and rng.random() < 0.75 else sorted(ways)
      wanted.append(int(pool[int(rng.integers(len(pool)))]))
    program = "".join(ways[d] for d in wanted)
    states = run(program, allowed)
    trace = ",".join("".join(map(str, s)) for s in states)
    return Example(f"wstk:{allowed}={''.join(map(str, wanted))}", program, trace)

  def score(self, example: Example, output: str) -> float:
    allowed, wanted = _parse(example.prompt)
    states = run(output, allowed)
    if states is None:
      return 0.0
    final = "".join(map(str, states[-1])) if states else ""
    return positional_credit(wanted, final)
