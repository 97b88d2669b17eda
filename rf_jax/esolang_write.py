"""The paper's esolang test: write a program in Brainf*ck or Befunge, judged by running it.

Han et al. (2025) gave language models the syntax of Brainf*ck and Befunge and worked
examples in context, and asked for programs: Brainf*ck Copy, Print and Sort; Befunge Print,
Fibonacci and Factorial. These are those six tasks, each with levels 1-4:

| task | the program must | level sets |
|---|---|---|
| bf_copy | print its input | the input's length: 1-2, 3-5, 6-10, 11-20 letters |
| bf_print | print a given string | its length: 1-2, 3-4, 5-7, 8-12 letters |
| bf_sort | print its input digits in ascending order | the input's length, as copy |
| befunge_print | print a given string | as bf_print |
| befunge_fib | read n, print the first n Fibonacci numbers | n: 1-3, 4-7, 8-12, 13-20 |
| befunge_fact | read n, print n! | n: 0-2, 3-5, 6-8, 9-12 |

A problem's prompt holds the language's description, two worked examples of *other*
problems (their programs would not solve this one), and the task; for tasks that read input
it shows one input and its output. The judge (rf_jax/esolang_judge.py) runs what the model
wrote on `N_TESTS` hidden inputs (the print tasks have one, empty) under the task's step and
time limits; the score is the fraction of right outputs and exact means all of them. Every
problem carries a reference program, which its own judge passes (tested).

Like the interpreters, this is evaluation only: nothing here is a training task.
"""
from __future__ import annotations

import dataclasses
import string
from typing import Callable

import numpy as np

from rf_jax.befunge import DOC_93
from rf_jax.esolang import BF_DOC
from rf_jax.esolang_judge import Limits, Spelling

MAX_LEVEL = 4
N_TESTS = 4  # hidden inputs per problem that reads input

_STRING_LEN = {1: (1, 2), 2: (3, 5), 3: (6, 10), 4: (11, 20)}
_PRINT_LEN = {1: (1, 2), 2: (3, 4), 3: (5, 7), 4: (8, 12)}
_FIB_N = {1: (1, 3), 2: (4, 7), 3: (8, 12), 4: (13, 20)}
_FACT_N = {1: (0, 2), 2: (3, 5), 3: (6, 8), 4: (9, 12)}


@dataclasses.dataclass(frozen=True)
class Problem:
  task: str
  level: int
  statement: str                       # what the prompt asks for, e.g. "print cab"
  tests: tuple[tuple[str, str], ...]   # hidden (input, expected output) pairs
  reference: str                       # a program that passes every test
  shown: tuple[str, str] | None = None  # an (input, output) pair the prompt shows


@dataclasses.dataclass(frozen=True)
class WriteTask:
  name: str
  language: str                                        # a language of the judge
  make: Callable[[np.random.Generator, int], Problem]  # (rng, level) -> a problem
  limits: Limits = Limits()


# Reference programs. Sort: counting sort over buckets for the digits 0-9 laid out as
# (lane, count) cell pairs; each digit walks its lane to its bucket leaving breadcrumbs,
# adds one, and walks back on them. Every bucket starts at 1, so the print loop can stop at
# the first empty one after bucket 9.
BF_COPY = ",[.,]"
BF_SORT = (">>++++++++++[[->>+<<]>+>-]<[<<]>,[<++++++[>--------<-]>[[->>+<<]+>>-]>+<<<[-<<]"
           ">>,]<++++++[>++++++++<-]>>[-[<.>-]<[->>+<<]>>+>]")


def _leftward(row0: str, body: str, below: int, end: str) -> str:
  """A two-row Befunge loop: `row0` runs right into a `v`; the second row returns left
  through `body` (written in execution order) to a `^` under column `below` of `row0`, and
  `end` follows the `_` that leaves the loop when the popped value is 0."""
  turn = max(len(row0), below + 1 + len(body))
  top = row0 + " " * (turn - len(row0)) + "v"
  gap = turn - below - 1 - len(body)
  bottom = " " * below + "^" + " " * gap + body[::-1] + "_" + end
  return top + "\n" + bottom


# The cells (1,9) and (2,9) hold a and b; the stack holds how many numbers are left.
BEFUNGE_FIB = _leftward("&019p129p>:", "19g.19g29g+29g19p29p1-", 9, "@")
# The cell (1,9) holds n; the stack holds the product.
BEFUNGE_FACT = _leftward("&19p1>19g", "19g*19g1-19p", 5, ".@")
BEFUNGE_COUNTDOWN = _leftward("&>:.1-:", "", 1, "@")  # a worked example: n down to 1


def bf_print_program(text: str) -> str:
  """A Brainf*ck program printing `text`: a multiplication loop builds the first
  character, then each next one is reached by steps of +1 or -1 from the last."""
  first = ord(text[0])
  a = min(range(2, 13), key=lambda k: k + round(first / k) + abs(first - k * round(first / k)))
  b = round(first / a)
  code, cur = "+" * a + "[>" + "+" * b + "<-]>", a * b
  for ch in text:
    delta = ord(ch) - cur
    code += ("+" * delta if delta >= 0 else "-" * -delta) + "."
    cur = ord(ch)
  return code


def befunge_print_program(text: str) -> str:
  return '"' + text[::-1] + '"' + "," * len(text) + "@"


def _between(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
  return int(rng.integers(lo_hi[0], lo_hi[1] + 1))


def _letters(rng: np.random.Generator, lo_hi) -> str:
  return "".join(rng.choice(list(string.ascii_lowercase), size=_between(rng, lo_hi)))


def _digits(rng: np.random.Generator, lo_hi) -> str:
  return "".join(rng.choice(list(string.digits), size=_between(rng, lo_hi)))


def _fib(n: int) -> str:
  a, b, out = 0, 1, []
  for _ in range(n):
    out.append(str(a))
    a, b = b, a + b
  return " ".join(out)


def _with_inputs(task, level, statement, reference, draw, answer) -> Problem:
  """A problem judged on N_TESTS hidden inputs from `draw`, plus one shown in the prompt."""
  def make(rng):
    inputs = [draw(rng) for _ in range(N_TESTS + 1)]
    tests = tuple((x, answer(x)) for x in inputs[:N_TESTS])
    return Problem(task, level, statement, tests, reference, (inputs[-1], answer(inputs[-1])))
  return make


def _bf_copy(rng, level):
  return _with_inputs("bf_copy", level, "print the input", BF_COPY,
                      lambda r: _letters(r, _STRING_LEN[level]), lambda x: x)(rng)


def _bf_sort(rng, level):
  return _with_inputs("bf_sort", level, "print the input digits in ascending order", BF_SORT,
                      lambda r: _digits(r, _STRING_LEN[level]),
                      lambda x: "".join(sorted(x)))(rng)


def _printer(name: str, program: Callable[[str], str]):
  def make(rng, level):
    text = _letters(rng, _PRINT_LEN[level])
    return Problem(name, level, f"print {text}", (("", text),), program(text))
  return make


def _befunge_fib(rng, level):
  return _with_inputs("befunge_fib", level, "read n,print the first n fibonacci numbers",
                      BEFUNGE_FIB, lambda r: str(_between(r, _FIB_N[level])),
                      lambda x: _fib(int(x)))(rng)


def _befunge_fact(rng, level):
  return _with_inputs("befunge_fact", level, "read n,print n factorial", BEFUNGE_FACT,
                      lambda r: str(_between(r, _FACT_N[level])),
                      lambda x: str(int(np.prod(range(1, int(x) + 1), dtype=object))))(rng)


TASKS: dict[str, WriteTask] = {t.name: t for t in (
    WriteTask("bf_copy", "brainfuck", _bf_copy),
    WriteTask("bf_print", "brainfuck", _printer("bf_print", bf_print_program)),
    WriteTask("bf_sort", "brainfuck", _bf_sort, Limits(max_steps=50_000)),
    WriteTask("befunge_print", "befunge93", _printer("befunge_print", befunge_print_program)),
    WriteTask("befunge_fib", "befunge93", _befunge_fib),
    WriteTask("befunge_fact", "befunge93", _befunge_fact),
)}

# Worked examples in every prompt of a language: other problems, with their programs.
EXAMPLES = {
    "brainfuck": (("print hi", bf_print_program("hi")),
                  ("print each input char plus one", ",[+.,]")),
    "befunge93": (("print hi", befunge_print_program("hi")),
                  ("read n,print n down to 1", BEFUNGE_COUNTDOWN)),
}
DOCS = {"brainfuck": BF_DOC, "befunge93": DOC_93}


def make_problem(task: WriteTask, rng: np.random.Generator, level: int) -> Problem:
  if not 1 <= level <= MAX_LEVEL:
    raise ValueError(f"program-writing levels are 1..{MAX_LEVEL}, got {level}")
  return task.make(rng, level)


def prompt(task: WriteTask, problem: Problem, spelling: Spelling = Spelling()) -> str:
  """Description, worked examples, then the task, in the vocabulary's spelling."""
  lines = [spelling.write(DOCS[task.language])]
  for statement, program in EXAMPLES[task.language]:
    lines += [f"task: {statement}", spelling.write(program)]
  shown = f",eg input {problem.shown[0]} gives {problem.shown[1]}" if problem.shown else ""
  lines.append(f"task: {problem.statement}{shown}")
  return "\n".join(lines)
