"""Brainf*ck probe: interpreter semantics on known programs, an independent interpreter,
and the generator's guarantees (digits only, halting, short, tokenisable)."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from rf_jax import esolang
from rf_jax.esolang import BF_DOC, BFError, bf_example, generate_program, run_bf
from rf_jax.vocab import phase1_vocab

LEVELS = (1, 2, 3, 4)
N = 200

HELLO = ("++++++++[>++++[>++>+++>+++>+<<<<-]>+>+>->>+[<]<-]>>.>---.+++++++..+++.>>.<-.<.+++."
         "------.--------.>>+.>++.")


def _programs(level: int, seed: int = 0, n: int = N) -> list[tuple[str, str]]:
  rng = np.random.default_rng(seed)
  return [generate_program(rng, level) for _ in range(n)]


def _mini_bf(program: str, inp: bytes = b"", max_steps: int = 100_000) -> tuple[bytes, int, bool]:
  """Independent reference: dict tape, brackets found by scanning at run time."""
  tape: dict[int, int] = collections.defaultdict(int)
  ptr = pc = steps = 0
  out = []
  inp_iter = iter(inp)
  while pc < len(program):
    c = program[pc]
    if c not in "+-<>[].,":
      pc += 1
      continue
    if steps == max_steps:
      return bytes(out), steps, False
    if c == "+":
      tape[ptr] = (tape[ptr] + 1) % 256
    elif c == "-":
      tape[ptr] = (tape[ptr] - 1) % 256
    elif c == ">":
      ptr += 1
    elif c == "<":
      ptr -= 1
      assert ptr >= 0
    elif c == ".":
      out.append(tape[ptr])
    elif c == ",":
      tape[ptr] = next(inp_iter, 0)
    elif c == "[" and tape[ptr] == 0:
      depth = 1
      while depth:
        pc += 1
        depth += {"[": 1, "]": -1}.get(program[pc], 0)
    elif c == "]" and tape[ptr] != 0:
      depth = 1
      while depth:
        pc -= 1
        depth += {"]": 1, "[": -1}.get(program[pc], 0)
    steps += 1
    pc += 1
  return bytes(out), steps, True


# Known programs.

def test_hello_world():
  r = run_bf(HELLO)
  assert r.output == b"Hello World!\n"
  assert r.halted


def test_cat_echoes_input_and_stops_at_eof():
  r = run_bf(",[.,]", b"abc xyz")
  assert r.output == b"abc xyz"
  assert r.halted
  # EOF stores 0: a read past the end leaves a zero cell, even over a non-zero one.
  assert run_bf("+++,.").output == b"\x00"


def test_cells_wrap():
  assert run_bf("-.").output == bytes([255])
  assert run_bf("-+.").output == bytes([0])
  assert run_bf("+" * 256 + ".").output == bytes([0])


def test_step_limit():
  r = run_bf("+[]", max_steps=1000)
  assert (r.halted, r.steps) == (False, 1000)
  # Finishing exactly on the limit is still a halt.
  r = run_bf("+++", max_steps=3)
  assert (r.halted, r.steps) == (True, 3)


def test_pointer_off_tape_raises():
  with pytest.raises(BFError, match="left"):
    run_bf("<")
  with pytest.raises(BFError, match="right"):
    run_bf(">>>", tape_len=3)
  assert run_bf(">>", tape_len=3).halted


def test_unmatched_brackets_raise_with_position():
  with pytest.raises(BFError, match=r"'\[' at position 2"):
    run_bf("++[>+")
  with pytest.raises(BFError, match=r"'\]' at position 4"):
    run_bf("+[-]]")
  # Positions count comment characters too: they index the source as written.
  with pytest.raises(BFError, match=r"'\]' at position 6"):
    run_bf("ab cd ]")


def test_comments_ignored():
  plain = run_bf("++++++[>++++++++<-]>+.")
  commented = run_bf("six ++++++ loop [> add 8 ++++++++ <-] > add 1 + print .\n")
  assert commented.output == plain.output == b"1"
  assert commented.steps == plain.steps  # comments are not instructions


def test_nested_loops():
  r = run_bf("+++[>++++[>+++++<-]<-]>>.")
  assert r.output == bytes([60]) == b"<"


def test_mini_interpreter_agrees_on_known_programs():
  for prog, inp in ((HELLO, b""), (",[.,]", b"hi"), ("+++[>++++[>+++++<-]<-]>>.", b""),
                    ("-.+.", b"")):
    r = run_bf(prog, inp)
    assert (r.output, r.steps, r.halted) == _mini_bf(prog, inp)
  assert _mini_bf("+[]", max_steps=1000) == (b"", 1000, False)


# Generated programs.

@pytest.mark.parametrize("level", LEVELS)
def test_independent_interpreter_agrees_on_generated(level):
  for prog, expected in _programs(level, seed=level):
    r = run_bf(prog)
    out, steps, halted = _mini_bf(prog)
    assert (r.output, r.steps, r.halted) == (out, steps, halted), prog
    assert out.decode("ascii") == expected, prog


@pytest.mark.parametrize("level", LEVELS)
def test_generated_programs_are_short_digit_only_and_halt(level):
  for prog, out in _programs(level):
    assert len(prog) < 120, prog
    assert set(prog) <= set("+-<>[].,"), prog
    assert out and all("0" <= c <= "9" for c in out), (prog, out)
    r = run_bf(prog)
    assert r.halted and r.steps < 100_000 // 100, prog
    assert r.output.decode("ascii") == out


def test_loops_from_level_2():
  assert not any("[" in p for p, _ in _programs(1))
  for level in (2, 3, 4):
    assert all("[" in p for p, _ in _programs(level)), level


def test_output_length_grows_with_level():
  means = [np.mean([len(o) for _, o in _programs(level)]) for level in LEVELS]
  assert all(a < b for a, b in zip(means, means[1:])), means
  assert {len(o) for _, o in _programs(1)} == {1}
  assert all(4 <= len(o) <= 6 for _, o in _programs(4))


def test_deterministic_in_seed():
  for level in LEVELS:
    assert _programs(level, seed=7, n=50) == _programs(level, seed=7, n=50)
  assert _programs(3, seed=7, n=50) != _programs(3, seed=8, n=50)


def test_examples_and_doc_are_tokenisable():
  vocab = phase1_vocab()
  vocab.encode(BF_DOC)
  assert len(BF_DOC) < 200
  for level in LEVELS:
    rng = np.random.default_rng(level)
    for _ in range(N):
      ex = bf_example(rng, level)
      assert ex.prompt.startswith("bf:") and ex.trace == ""
      vocab.encode(ex.prompt)
      vocab.encode(ex.answer)


def test_bad_level_rejected():
  with pytest.raises(ValueError):
    generate_program(np.random.default_rng(0), 0)
  with pytest.raises(ValueError):
    generate_program(np.random.default_rng(0), esolang.MAX_LEVEL + 1)


def test_not_a_training_task():
  from rf_jax import tasks
  assert not any("bf" in n or "esolang" in n for n in tasks.names())
