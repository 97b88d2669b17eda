"""Brainf*ck: an unfamiliar-language probe for evaluation only, never a training task.

The question is whether a model that learned algorithms on the synthetic tasks can
predict what a program in a language it has never seen prints, given only the short
description `BF_DOC` in context (the `brainfuck` probe, rf_jax/probes/brainfuck.py). So
this module is deliberately not registered in `rf_jax.tasks`: training on it would defeat
the out-of-distribution test.

Interpreter semantics (fixed, so expected outputs never depend on a dialect):
- Cells are bytes: `+`/`-` wrap mod 256 (0 - 1 = 255, 255 + 1 = 0). All cells start at 0.
- The tape has `tape_len` cells and the pointer starts at cell 0; moving left of cell 0
  or right of the last cell raises BFError (no wrap-around, no growth).
- `,` reads the next input byte; at end of input it stores 0 (the fixed end-of-input rule).
  `.` appends the current cell to the output as one byte.
- `[`/`]` are matched before execution starts: an unmatched bracket raises BFError naming
  its 0-based position in the source. Every other character is a comment and is skipped.
- Only the eight commands count as steps. After `max_steps` executed instructions a
  program that has not finished stops with `halted=False`; finishing exactly on the
  limit still counts as halted. With `time_limit_s` > 0 it also stops (`halted=False`,
  `timed_out=True`) once that many seconds have passed, checked every 1024 steps.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from rf_jax.tasks.base import Example

COMMANDS = "+-<>[].,"
MAX_LEVEL = 4
MAX_PROGRAM_LEN = 120  # keeps level-4 prompts short enough for small context windows

# Every character is in rf_jax.vocab.SYMBOLS, so the description can sit in a prompt.
BF_DOC = ("bf: tape of byte cells all 0,ptr at cell 0. + inc cell,- dec cell (mod 256),"
          "> right,< left,[ skip past matching ] if cell=0,] back to [ if cell!=0,"
          ". print cell as char,, read char (0 at end)")


class BFError(ValueError):
  """A program that cannot run: unmatched bracket or pointer off the tape."""


@dataclasses.dataclass(frozen=True)
class BFResult:
  output: bytes
  steps: int
  halted: bool
  timed_out: bool = False


def _compile(program: str) -> tuple[str, list[int], list[int]]:
  """Strips comments; returns (ops, source position of each op, bracket jump table)."""
  positions = [i for i, c in enumerate(program) if c in COMMANDS]
  ops = "".join(program[i] for i in positions)
  jump = [0] * len(ops)
  stack: list[int] = []
  for pc, op in enumerate(ops):
    if op == "[":
      stack.append(pc)
    elif op == "]":
      if not stack:
        raise BFError(f"unmatched ']' at position {positions[pc]}")
      start = stack.pop()
      jump[start], jump[pc] = pc, start
  if stack:
    raise BFError(f"unmatched '[' at position {positions[stack[-1]]}")
  return ops, positions, jump


def run_bf(program: str, input_bytes: bytes = b"", max_steps: int = 100_000,
           tape_len: int = 30_000, time_limit_s: float = 0.0) -> BFResult:
  """Runs `program` under the semantics in the module docstring."""
  if tape_len < 1:
    raise ValueError(f"tape_len must be >= 1, got {tape_len}")
  if max_steps < 0:
    raise ValueError(f"max_steps must be >= 0, got {max_steps}")
  ops, positions, jump = _compile(program)
  tape = bytearray(tape_len)
  out = bytearray()
  ptr = pc = steps = read = 0
  n = len(ops)
  deadline = time.perf_counter() + time_limit_s if time_limit_s > 0 else None
  while pc < n:
    if steps == max_steps:
      return BFResult(bytes(out), steps, False)
    if deadline is not None and not steps & 1023 and time.perf_counter() > deadline:
      return BFResult(bytes(out), steps, False, timed_out=True)
    op = ops[pc]
    if op == "+":
      tape[ptr] = (tape[ptr] + 1) & 255
    elif op == "-":
      tape[ptr] = (tape[ptr] - 1) & 255
    elif op == ">":
      if ptr == tape_len - 1:
        raise BFError(f"pointer moved right of cell {tape_len - 1} at position {positions[pc]}")
      ptr += 1
    elif op == "<":
      if ptr == 0:
        raise BFError(f"pointer moved left of cell 0 at position {positions[pc]}")
      ptr -= 1
    elif op == "[":
      if tape[ptr] == 0:
        pc = jump[pc]
    elif op == "]":
      if tape[ptr] != 0:
        pc = jump[pc]
    elif op == ".":
      out.append(tape[ptr])
    else:  # ","
      tape[ptr] = input_bytes[read] if read < len(input_bytes) else 0
      read += 1
    pc += 1
    steps += 1
  return BFResult(bytes(out), steps, True)


# Generator. Output is digits only ('0'-'9' = bytes 48..57) so every answer is tokenisable.
# A program is a setup that builds a value near 48 in one cell, then segments that each
# nudge that cell to a digit and print it. The cell left of the print cell is always 0
# after setup, which is what lets a "run" segment use it as a loop counter.

_NESTED = ((2, 3, 8), (2, 4, 6), (3, 4, 4), (2, 2, 12), (2, 3, 9), (3, 3, 5), (2, 5, 5),
           (4, 4, 3), (3, 2, 8), (2, 4, 7), (3, 3, 6))  # products 45..56


def _num_digits(rng: np.random.Generator, level: int) -> int:
  lo, hi = {1: (1, 1), 2: (1, 2), 3: (2, 4), 4: (4, 6)}[level]
  return int(rng.integers(lo, hi + 1))


def _nudge(delta: int) -> str:
  return "+" * delta if delta >= 0 else "-" * -delta


def _setup(rng: np.random.Generator, level: int) -> tuple[str, int]:
  """Returns (code, value left in the current cell)."""
  if level == 1:
    return "", 0  # no loops at level 1: the first print segment counts up from 0
  if level == 4 and rng.random() < 0.5:
    a, b, c = _NESTED[int(rng.integers(len(_NESTED)))]
    return "+" * a + "[>" + "+" * b + "[>" + "+" * c + "<-]<-]>>", a * b * c
  a = int(rng.integers(3, 9))
  b = int(rng.integers(-(-44 // a), 58 // a + 1))  # a*b in [44, 58]
  return "+" * a + "[>" + "+" * b + "<-]>", a * b


def generate_program(rng: np.random.Generator, level: int) -> tuple[str, str]:
  """Returns (program, expected output text): a small halting program printing digits."""
  if not 1 <= level <= MAX_LEVEL:
    raise ValueError(f"bf levels are 1..{MAX_LEVEL}, got {level}")
  n = _num_digits(rng, level)
  code, cur = _setup(rng, level)
  parts = [code]
  left = n
  while left:
    if level >= 3 and left >= 2 and rng.random() < 0.5:
      # Run: a counted loop printing k consecutive digits, so the output depends on
      # the loop count rather than on one explicit `.` per character.
      k = int(rng.integers(2, min(left, 4) + 1))
      start = 48 + int(rng.integers(0, 10 - k + 1))
      parts.append(_nudge(start - cur) + "<" + "+" * k + "[>.+<-]>")
      cur, left = start + k, left - k
    else:
      target = 48 + int(rng.integers(0, 10))
      parts.append(_nudge(target - cur) + ".")
      cur, left = target, left - 1
  program = "".join(parts)
  output = run_bf(program).output.decode("ascii")
  # Construction guarantees these; a failure here is a generator bug, not bad luck.
  if len(program) >= MAX_PROGRAM_LEN or len(output) != n or not output.isdigit():
    raise RuntimeError(f"bf generator bug: {program!r} -> {output!r}")
  return program, output


def bf_example(rng: np.random.Generator, level: int) -> Example:
  program, output = generate_program(rng, level)
  return Example(f"bf:{program}", output, "")
