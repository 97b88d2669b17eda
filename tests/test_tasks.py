"""Built-in task families: answers checked by independent solvers, plus the registry contract."""
from __future__ import annotations

import numpy as np
import pytest

from rf_jax import tasks
from rf_jax.tasks import base
from rf_jax.tasks.algorithmic import BUILTIN
from rf_jax.vocab import phase1_vocab

SEED = 1234
N = 200
LEVELS = (1, 2, 3, 4)


def _examples(name: str, level: int, n: int = N, seed: int = SEED):
  task = tasks.get(name)
  return [tasks.make_example(task, seed, i, level) for i in range(n)]


def _body(prompt: str, tag: str) -> str:
  assert prompt.startswith(tag), (prompt, tag)
  return prompt[len(tag):]


# Independent solvers: plain Python from the prompt alone, not the generators' code.

def _solve_copy(p: str) -> str:
  s = _body(p, "copy:")
  assert s.isalpha() and s.islower()
  return s


def _solve_reverse(p: str) -> str:
  s = _body(p, "rev:")
  assert s.isalpha() and s.islower()
  return "".join(reversed(s))


def _solve_sort(p: str) -> str:
  s = _body(p, "sort:")
  assert s.isdigit()
  return "".join(sorted(s))


def _solve_add(p: str) -> str:
  a, b = _body(p, "add:").split("+")
  for x in (a, b):
    assert x.isdigit() and (x == "0" or not x.startswith("0")), p
  return str(int(a) + int(b))


def _solve_parity(p: str) -> str:
  s = _body(p, "par:")
  assert set(s) <= {"0", "1"} and len(s) >= 2
  return str(s.count("1") % 2)


def _solve_dyck(p: str) -> str:
  s = _body(p, "dyck:")
  closer = {"(": ")", "[": "]", "{": "}", "<": ">"}
  opener = {v: k for k, v in closer.items()}
  stack = []
  for c in s:
    if c in closer:
      stack.append(c)
    else:
      assert stack and stack[-1] == opener[c], f"not a balanced prefix: {s}"
      stack.pop()
  assert stack, f"prefix has nothing to close: {s}"
  return "".join(closer[c] for c in reversed(stack))


def _has_open(s: str) -> bool:
  return sum(c in "([{<" for c in s) > sum(c in ")]}>" for c in s)


SOLVERS = {"copy": _solve_copy, "reverse": _solve_reverse, "sort": _solve_sort,
           "add": _solve_add, "parity": _solve_parity, "dyck": _solve_dyck}


def test_builtin_registered():
  assert set(BUILTIN) <= set(tasks.names())
  assert set(SOLVERS) == set(BUILTIN)
  for name in BUILTIN:
    assert tasks.get(name).max_level == 4


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("level", LEVELS)
def test_answers_match_independent_solver(name, level):
  for ex in _examples(name, level):
    assert ex.answer == SOLVERS[name](ex.prompt), ex


@pytest.mark.parametrize("level", LEVELS)
def test_level_bounds(level):
  lo, hi = 2 * level - 1, 3 * level
  for name, tag in (("copy", "copy:"), ("reverse", "rev:"), ("sort", "sort:"), ("dyck", "dyck:")):
    lens = {len(_body(e.prompt, tag)) for e in _examples(name, level)}
    assert lo <= min(lens) and max(lens) <= hi, (name, lens)
  lens = {len(_body(e.prompt, "par:")) for e in _examples("parity", level)}
  assert max(2, lo) <= min(lens) and max(lens) <= hi
  digits = {len(x) for e in _examples("add", level) for x in _body(e.prompt, "add:").split("+")}
  assert digits == set(range(1, level + 2))  # every digit count in [1, l+1] shows up
  brackets = {c for e in _examples("dyck", level) for c in _body(e.prompt, "dyck:")}
  assert brackets <= set("()[]{}<>"[: 2 * level])


def test_level1_is_small():
  for name in BUILTIN:
    assert max(len(e.answer) for e in _examples(name, 1)) <= 3, name


def test_traces():
  for e in _examples("add", 3):
    # Independent re-check: each column is "x+y+c=s" with s = x+y+c, carry chained, and the
    # column sums' units digits (plus the final carry) spell the answer.
    digits, carry = [], 0
    for col in e.trace.split(";"):
      lhs, s = col.split("=")
      x, y, c = map(int, lhs.split("+"))
      assert c == carry and int(s) == x + y + c
      digits.append(int(s) % 10)
      carry = int(s) // 10
    got = ("1" if carry else "") + "".join(map(str, reversed(digits)))
    assert got == e.answer, e
  assert tasks.make_example(tasks.get("add"), 0, 0, 1).trace.count(";") <= 1
  for e in _examples("parity", 3):
    bits = _body(e.prompt, "par:")
    assert e.trace == "".join(str(bits[: i + 1].count("1") % 2) for i in range(len(bits)))
  for e in _examples("dyck", 3):
    s = _body(e.prompt, "dyck:")
    # Field i is the open stack after s[:i+1]; its closers (innermost first) are the
    # independent solver's answer for that prefix.
    states = e.trace.split(",")
    assert len(states) == len(s)
    for i, st in enumerate(states):
      assert set(st) <= set("([{<")
      want = _solve_dyck("dyck:" + s[: i + 1]) if _has_open(s[: i + 1]) else ""
      assert (_solve_dyck("dyck:" + st) if st else "") == want, (e, i)
    assert _solve_dyck("dyck:" + states[-1]) == e.answer
  for name in ("copy", "reverse", "sort"):
    assert all(e.trace == "" for e in _examples(name, 2, n=20))


@pytest.mark.parametrize("name", BUILTIN)
def test_deterministic(name):
  task = tasks.get(name)
  for level in LEVELS:
    a = [tasks.make_example(task, 7, i, level) for i in range(20)]
    b = [tasks.make_example(task, 7, i, level) for i in range(20)]
    assert a == b
    # Different items should mostly differ (level 1 spaces are small, so allow repeats).
    assert len(set(a)) >= (3 if level == 1 else 15), (name, level)
  assert tasks.make_example(task, 1, 0, 4) != tasks.make_example(task, 2, 0, 4)


def test_vocab_encodable():
  vocab = phase1_vocab()
  for name in BUILTIN:
    for level in LEVELS:
      for e in _examples(name, level, n=50):
        for text in (e.prompt, e.answer, e.trace):
          vocab.encode(text)  # raises ValueError on any unknown character


@pytest.mark.parametrize("name", BUILTIN)
def test_difficulty_grows(name):
  means = [np.mean([len(e.prompt) for e in _examples(name, level)]) for level in LEVELS]
  assert all(a < b for a, b in zip(means, means[1:])), means


@pytest.mark.parametrize("name", BUILTIN)
def test_score(name):
  task = tasks.get(name)
  for level in LEVELS:
    for e in _examples(name, level, n=50):
      assert task.score(e, e.answer) == 1.0
      for wrong in ("", "#", e.answer + "x", "x" + e.answer):
        assert 0.0 <= task.score(e, wrong) < 1.0
      if len(e.answer) >= 2:
        # One corrupted symbol keeps the rest aligned under either alignment.
        bad = "#" + e.answer[1:]
        assert 0.0 < task.score(e, bad) < 1.0, (e, bad)


def test_add_right_aligned_credit():
  add = tasks.get("add")
  e = tasks.Example("add:100+23", "123", "")
  assert add.score(e, "123") == 1.0
  assert add.score(e, "23") == pytest.approx(2 / 3)  # dropped leading digit: units still align
  assert add.score(e, "12") == 0.0  # left-aligned prefix puts every digit in the wrong column
  assert add.score(e, "923") == pytest.approx(2 / 3)
  assert add.score(e, "0123") < 1.0
  # The default scorer aligns from the left, which is what copy-like tasks want.
  assert tasks.get("copy").score(tasks.Example("copy:abc", "abc"), "ab") == pytest.approx(2 / 3)


def test_unknown_task():
  with pytest.raises(ValueError) as err:
    tasks.get("no_such_task")
  for name in BUILTIN:
    assert name in str(err.value)


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("level", (0, 5, -1))
def test_bad_level(name, level):
  task = tasks.get(name)
  with pytest.raises(ValueError):
    tasks.make_example(task, 0, 0, level)
  with pytest.raises(ValueError):
    task.generate(np.random.default_rng(0), level)


def test_duplicate_name_rejected():
  with pytest.raises(ValueError):
    @tasks.register
    class AnotherCopy(tasks.Task):  # noqa: F841
      name = "copy"
  assert type(tasks.get("copy")).__module__ == "rf_jax.tasks.algorithmic"


@pytest.fixture
def user_task():
  @tasks.register
  class Echo(tasks.Task):
    name = "test_echo"
    max_level = 2

    def generate(self, rng, level):
      tasks.check_level(self, level)
      s = str(int(rng.integers(0, 10 ** level)))
      return tasks.Example(f"echo:{s}", s)

  yield Echo
  base._REGISTRY.pop("test_echo", None)  # keep the global registry clean for other tests


def test_user_task(user_task):
  assert "test_echo" in tasks.names()
  task = tasks.get("test_echo")
  assert isinstance(task, user_task)
  e = tasks.make_example(task, 0, 3, 2)
  assert e == tasks.make_example(task, 0, 3, 2) and e.prompt == f"echo:{e.answer}"
  assert task.score(e, e.answer) == 1.0
  user_task_again = tasks.register(user_task)  # re-registering the same class is a no-op
  assert user_task_again is user_task
  with pytest.raises(ValueError):
    tasks.make_example(task, 0, 0, 3)
