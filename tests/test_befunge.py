"""Befunge: the interpreter on well-known programs, every instruction and every error path
(Befunge-93, then Befunge-98's differences), and the output-prediction probe's generator
checked against an independent interpreter."""
from __future__ import annotations

import collections
import time

import numpy as np
import pytest

from rf_jax.befunge import DOC_93, DOC_98, STATUSES, run_befunge
from rf_jax.esolang_judge import spelling
from rf_jax.esolang_write import BEFUNGE_FACT, BEFUNGE_FIB
from rf_jax.probes.befunge import MAX_LEVEL, described_example, generate_program
from rf_jax.vocab import phase1_vocab, text_vocab

LEVELS = range(1, MAX_LEVEL + 1)


def out(program: str, inp: bytes = b"", **kw) -> str:
  r = run_befunge(program, inp, **kw)
  assert r.halted, r
  return r.output.decode("latin-1")


# Well-known programs.

def test_hello_world():
  assert out('0"!dlrow ,olleh">:#,_@') == "hello, world!"


def test_cat_copies_input_and_stops_at_end_of_input():
  assert out("~:1+!#@_,", b"cat: abc\n") == "cat: abc\n"
  assert out("~:1+!#@_,") == ""


def test_factorial_and_fibonacci():
  assert [out(BEFUNGE_FACT, str(n).encode()) for n in range(7)] == \
      ["1 ", "1 ", "2 ", "6 ", "24 ", "120 ", "720 "]
  assert out(BEFUNGE_FACT, b"20") == f"{2432902008176640000} "  # cells are unbounded ints
  assert out(BEFUNGE_FIB, b"10") == "0 1 1 2 3 5 8 13 21 34 "


def test_quine_prints_its_own_source():
  quine = ":0g,1+:96+-!#@_"  # reads row 0 with g until column 15
  assert out(quine) == quine


# Every Befunge-93 instruction.

@pytest.mark.parametrize("program,inp,expected", [
    ("23+.@", b"", "5 "), ("23-.@", b"", "-1 "), ("23*.@", b"", "6 "),
    ("72/.@", b"", "3 "), ("07-2/.@", b"", "-3 "),        # division truncates toward zero
    ("72%.@", b"", "1 "), ("07-2%.@", b"", "-1 "),        # the remainder has a's sign
    ("0!.5!.@", b"", "1 0 "), ("32`.23`.33`.@", b"", "1 0 0 "),
    ("v\n>1.@", b"", "1 "),                               # down, then right
    ("<@.1", b"", "1 "),                                  # left, wrapping past column 0
    ("^\n@\n.\n1", b"", "1 "),                            # up, wrapping past row 0
    ("0  v\n@.3_2.@", b"", "2 "), ("1  v\n@.3_2.@", b"", "3 "),  # _ right on 0, else left
    ("0|\n 2\n .\n @", b"", "2 "),                        # | down on 0
    ("1|" + "\n" * 22 + " @\n .\n 7", b"", "7 "),         # | up otherwise (wrapping)
    ('"ba",,@', b"", "ab"), ('"a b",,,@', b"", "b a"),    # string mode pushes spaces too
    ("3:..@", b"", "3 3 "), (":..@", b"", "0 0 "),        # empty pops give 0
    ("12\\..@", b"", "1 2 "), ("\\..@", b"", "0 0 "), ("12$.@", b"", "1 "),
    ("88*1+,@", b"", "A"), ("88*1+44*44**+,@", b"", "A"),  # , prints the value mod 256
    ("#@1.@", b"", "1 "), ("30g.@", b"", "46 "),          # g reads a cell: '.' is 46
    ("758*6+90p @", b"", "7 "),                           # p writes '.' where the IP goes
    ("99*9*10p10g.@", b"", "729 "),                       # cells hold any integer
    ("&&+.@", b"12 30", "42 "), ("&.@", b"x-5y", "-5 "), ("&.&.@", b"7", "7 -1 "),
    ("~.~.~.@", b"ab", "97 98 -1 "),                      # -1 at the end of the input
    ("   1.@", b"", "1 "),
])
def test_instruction(program, inp, expected):
  assert out(program, inp) == expected


def test_random_direction_is_seeded():
  program = "?2.@\n3\n.\n@"  # right prints 2, down prints 3, up or left print nothing
  runs = {seed: run_befunge(program, seed=seed) for seed in range(40)}
  assert {r.output for r in runs.values()} == {b"2 ", b"3 ", b""}
  assert all(r.halted for r in runs.values())
  for seed, r in runs.items():
    assert run_befunge(program, seed=seed) == r


def test_every_status_is_a_result_never_an_exception():
  assert run_befunge("10/.@").status == "error"
  assert run_befunge("10/.@").message == "division by zero at (2,0)"
  assert run_befunge("10%.@").message == "modulo by zero at (2,0)"
  r = run_befunge("1x.@")
  assert (r.status, r.message) == ("error", "bad instruction 'x' at (1,0)")
  r = run_befunge(">", max_steps=1000)
  assert (r.status, r.steps) == ("step_limit", 1000)
  t0 = time.perf_counter()
  r = run_befunge(">:#,_", max_steps=10 ** 9, time_limit_s=0.05)
  assert r.status == "time_limit" and time.perf_counter() - t0 < 10
  assert run_befunge("99*9*0g@").status == "error"             # g outside 80x25
  assert "outside" in run_befunge("1 99*9*p@").message
  assert run_befunge("\n" * 25 + "@").status == "error"        # 26 lines
  assert "80x25" in run_befunge("@" + " " * 80).message
  assert run_befunge("@", max_steps=1).halted                  # ending on the limit halts
  with pytest.raises(ValueError, match="dialect"):
    run_befunge("@", dialect="96")


def test_random_programs_always_end_with_a_status():
  rng = np.random.default_rng(0)
  alphabet = list("0123456789+-*/%!`><^v?_|\":\\$.,#gp&~@ abc{}yk;'[]rjnwxzq()sA")
  for dialect in ("93", "98"):
    for _ in range(400):
      lines = ["".join(rng.choice(alphabet, size=int(rng.integers(1, 12))))
               for _ in range(int(rng.integers(1, 4)))]
      data = bytes(rng.integers(0, 128, size=3).tolist())
      r = run_befunge("\n".join(lines), data, max_steps=2000, dialect=dialect, time_limit_s=1.0)
      assert r.status in STATUSES and r.steps <= 2000, (lines, r)


# Befunge-98.

@pytest.mark.parametrize("program,inp,expected", [
    ("af+.@", b"", "25 "), ("'A.@", b"", "65 "), ("'Xs 30g.@", b"", "88 "),
    ("1;2.;.@", b"", "1 "), ("1]\n .\n @", b"", "1 "), ("1[\n @\n .", b"", "1 "),
    ("r@.1", b"", "1 "), ("2j..1.@", b"", "1 "), ("3k1....@", b"", "1 1 1 0 "),
    ("0k1.@", b"", "0 "), ("12n..@", b"", "0 0 "),
    ("21w3.@\n  .\n  @", b"", "0 "), ("11w3.@\n  .\n  @", b"", "3 "), ("12w3.@\n  .\n  @", b"", ""),
    ("01x\n  .\n  @", b"", "0 "), ("z1.@", b"", "1 "), ("1.q2.@", b"", "1 "),
    ("10/.@", b"", "0 "), ("10%.@", b"", "0 "),           # division by zero gives 0
    ("#@A", b"", ""), ("#@t", b"", ""), ("#@(", b"", ""),  # unknown / optional: reverse
    ("#@~", b"", ""), ("#@&", b"5", "") ,                  # & and ~ at the end: reverse
    ('"a  b",,,@', b"", "b a"),                            # a run of spaces is one space
    ("'a52p52g,@", b"", "a"), ("99g.@", b"", "32 "),       # p grows the box; g outside: 32
    ("&.@", b"-5", "-5 "),
])
def test_befunge98(program, inp, expected):
  r = run_befunge(program, inp, dialect="98", max_steps=10_000)
  assert r.halted and r.output.decode() == expected, r


def test_befunge98_wraps_at_the_programs_box_and_93_at_80x25():
  assert run_befunge("<@.1", dialect="98").steps < run_befunge("<@.1").steps
  assert run_befunge("#@~").status == "step_limit"  # 93 pushes -1 and goes round


@pytest.mark.parametrize("program,what", [
    ("1{@", "{"), ("}@", "}"), ("u@", "u"), ("y@", "y"), ("11x@", "x with the non-cardinal"),
    ("101-p@", "p at negative"), ("199*:*99*p@", "p at (6561,81), far outside"),
])
def test_befunge98_unsupported_is_reported_by_name(program, what):
  r = run_befunge(program, dialect="98")
  assert r.status == "unsupported" and r.message.startswith(f"unsupported: {what}"), r


# The output-prediction generator.

def _mini(program: str, max_steps: int = 10_000) -> str:
  """Independent reference for the generator's instructions: a dict playfield, 80x25."""
  cells = collections.defaultdict(lambda: " ")
  for y, line in enumerate(program.split("\n")):
    for x, c in enumerate(line):
      cells[x, y] = c
  x = y = 0
  d = (1, 0)
  stack, printed = [], []
  pop = lambda: stack.pop() if stack else 0
  for _ in range(max_steps):
    c = cells[x, y]
    if c == "@":
      return "".join(printed)
    if c.isdigit():
      stack.append(int(c))
    elif c in "+-*":
      b, a = pop(), pop()
      stack.append({"+": a + b, "-": a - b, "*": a * b}[c])
    elif c in "<>^v":
      d = {">": (1, 0), "<": (-1, 0), "^": (0, -1), "v": (0, 1)}[c]
    elif c == "_":
      d = (1, 0) if pop() == 0 else (-1, 0)
    elif c == ":":
      v = pop()
      stack += [v, v]
    elif c == "!":
      stack.append(int(pop() == 0))
    elif c == "$":
      pop()
    elif c == ".":
      printed.append(f"{pop()} ")
    elif c == ",":
      printed.append(chr(pop()))
    else:
      assert c == " ", c
    x, y = (x + d[0]) % 80, (y + d[1]) % 25
  raise AssertionError(f"no halt: {program!r}")


def _programs(level, seed=0, n=200):
  rng = np.random.default_rng(seed)
  return [generate_program(rng, level) for _ in range(n)]


@pytest.mark.parametrize("level", LEVELS)
def test_generated_programs_agree_with_an_independent_interpreter(level):
  for program, output in _programs(level, seed=level):
    assert _mini(program) == output, program
    assert len(program) <= 80 and output


def test_generated_programs_grow_with_level():
  rows = {lvl: {p.count("\n") + 1 for p, _ in _programs(lvl)} for lvl in LEVELS}
  assert rows == {1: {1}, 2: {1}, 3: {2}, 4: {2}}
  assert all("_" in p for p, _ in _programs(4)) and not any("_" in p for p, _ in _programs(3))
  means = [np.mean([len(p) for p, _ in _programs(lvl)]) for lvl in LEVELS]
  assert all(a < b for a, b in zip(means, means[1:])), means
  assert _programs(3, seed=5, n=30) == _programs(3, seed=5, n=30) != _programs(3, seed=6, n=30)
  with pytest.raises(ValueError):
    generate_program(np.random.default_rng(0), MAX_LEVEL + 1)


def test_docs_and_examples_encode_in_every_vocabulary():
  for vocab in (phase1_vocab(), text_vocab("bytes")):
    spell = spelling(vocab)
    for doc in (DOC_93, DOC_98):
      vocab.encode(spell.write(doc))
    for level in LEVELS:
      ex = described_example(np.random.default_rng(level), level, spell.write(DOC_93))
      vocab.encode(ex.prompt + ex.answer)
  assert dict(spelling(phase1_vocab()).pairs) == {'"': "Q", "\\": "S", "`": "G"}
  assert spelling(text_vocab("bytes")).pairs == ()
