"""Reasoning task families: answers and traces checked by independent solvers, plus limits."""
from __future__ import annotations

import collections
import itertools
import re

import numpy as np
import pytest

from rf_jax import tasks
from rf_jax.tasks.reasoning import REASONING
from rf_jax.vocab import phase1_vocab

SEED = 4321
N = 100
LEVELS = (1, 2, 3, 4)


def _examples(name: str, level: int, n: int = N, seed: int = SEED):
  task = tasks.get(name)
  return [tasks.make_example(task, seed, i, level) for i in range(n)]


def _body(prompt: str, tag: str) -> str:
  assert prompt.startswith(tag), (prompt, tag)
  return prompt[len(tag):]


# Independent solvers: plain Python from the prompt alone (plus the level where the task's
# documented rule family depends on it), not the generators' code.

def _solve_mul(p: str, level: int) -> str:
  a, b = _body(p, "mul:").split("*")
  for x in (a, b):
    assert x.isdigit() and not x.startswith("0"), p
  return str(int(a) * int(b))


def _solve_modarith(p: str, level: int) -> str:
  m = re.fullmatch(r"mod(\d):(\d+(?:[-+*]\d+)*)", p)
  assert m, p
  mod, toks = int(m.group(1)), re.findall(r"[-+*]|\d+", m.group(2))
  val = int(toks[0])
  for op, x in zip(toks[1::2], toks[2::2]):  # strictly left to right
    assert int(x) < mod
    val = {"+": val + int(x), "-": val - int(x), "*": val * int(x)}[op] % mod
  return str(val)


def _ptr_bindings(p: str) -> tuple[dict, str]:
  text, query = _body(p, "ptr:").split(";")
  pairs = [b.split("=") for b in text.split(",")]
  env = dict(pairs)
  assert len(env) == len(pairs) and query.endswith("?")
  return env, query[:-1]


def _solve_pointer(p: str, level: int) -> str:
  env, v = _ptr_bindings(p)
  for _ in range(len(env) + 1):
    if v.isdigit():
      return v
    v = env[v]
  raise AssertionError(f"cycle in {p}")


def _reach_graph(p: str):
  text, query = _body(p, "reach:").split(";")
  edges = text.split(",")
  assert len(set(edges)) == len(edges) and all(len(e) == 2 and e[0] != e[1] for e in edges)
  src, dst = re.fullmatch(r"([a-z])>([a-z])\?", query).groups()
  adj = collections.defaultdict(set)
  for a, b in edges:
    adj[a].add(b)
  return adj, src, dst


def _solve_reach(p: str, level: int) -> str:
  adj, src, dst = _reach_graph(p)
  seen, q = {src}, collections.deque([src])
  while q:
    for b in adj[q.popleft()] - seen:
      seen.add(b)
      q.append(b)
  assert src != dst
  return str(int(dst in seen))


def _py_bool(s: str) -> str:
  assert set(s) <= set("01&|!()"), s
  # Python's not > and > or matches the task's ! > & > |.
  return str(int(bool(eval(s.replace("!", " not ").replace("&", " and ").replace("|", " or ")))))


def _solve_boolean(p: str, level: int) -> str:
  return _py_bool(_body(p, "bool:"))


_RULE110 = {format(i, "03b"): format(110, "08b")[7 - i] for i in range(8)}


def _eca_step(row: str) -> str:
  padded = "0" + row + "0"
  return "".join(_RULE110[padded[i:i + 3]] for i in range(len(row)))


def _solve_eca(p: str, level: int) -> str:
  k, row = re.fullmatch(r"eca:k=(\d+):([01]+)", p).groups()
  for _ in range(int(k)):
    row = _eca_step(row)
  return row


def _stack_run(prog: str) -> list[str]:
  stack, states = [], []
  for c in prog:
    need = {"+": 2, "*": 2, "s": 2, "d": 1, "p": 1}.get(c, 0)
    assert c.isdigit() or need, (prog, c)
    assert len(stack) >= need, f"underflow in {prog}"
    if c.isdigit():
      stack.append(int(c))
    elif c == "d":
      stack.append(stack[-1])
    elif c == "p":
      stack.pop()
    elif c == "s":
      stack[-1], stack[-2] = stack[-2], stack[-1]
    else:
      y, x = stack.pop(), stack.pop()
      stack.append((x + y) % 10 if c == "+" else (x * y) % 10)
    states.append("".join(map(str, stack)))
  return states


def _solve_stack(p: str, level: int) -> str:
  out = _stack_run(_body(p, "stk:"))[-1]
  assert out, p
  return out


def _solve_kdyck(p: str, level: int) -> str:
  s = _body(p, "kdyck:")
  assert set(s) <= set("()[]{}<>"[: 2 * level])
  for o, c in ("()", "[]", "{}", "<>"):
    depth = 0
    for ch in s:
      depth += (ch == o) - (ch == c)
      if depth < 0:
        return "0"
    if depth:
      return "0"
  return "1"


def _induct_answers(p: str, level: int) -> set:
  text, query = _body(p, "ind:").split(";")
  pairs = [x.split(">") for x in text.split(",")]
  q = query[:-2]
  assert query.endswith(">?") and len({len(s) for pair in pairs for s in pair} | {len(q)}) == 1
  kinds = ("add", "rev", "rot", "sub")[:level]
  rules = []
  if "add" in kinds:
    rules += [lambda s, c=c: "".join(str((int(d) + c) % 10) for d in s) if s.isdigit() else None
              for c in range(1, 10)]
  if "rev" in kinds:
    rules.append(lambda s: s[::-1])
  if "rot" in kinds:
    rules += [lambda s, r=r: s[r:] + s[:r] for r in range(1, len(q))]
  if "sub" in kinds:
    for perm in itertools.permutations("abcdef"):
      table = dict(zip("abcdef", perm))
      rules.append(lambda s, t=table: "".join(t[c] for c in s) if set(s) <= set(t) else None)
  return {f(q) for f in rules if all(f(x) == y for x, y in pairs)}


def _solve_induct(p: str, level: int) -> str:
  answers = _induct_answers(p, level)
  assert len(answers) == 1, (p, answers)  # the shown pairs pin the answer down
  return answers.pop()


SOLVERS = {"mul": _solve_mul, "modarith": _solve_modarith, "pointer": _solve_pointer,
           "reach": _solve_reach, "boolean": _solve_boolean, "eca": _solve_eca,
           "stack": _solve_stack, "kdyck": _solve_kdyck, "induct": _solve_induct}


def test_registered():
  assert set(SOLVERS) == set(REASONING) and len(REASONING) == 9
  assert set(REASONING) <= set(tasks.names())
  assert len(tasks.names()) >= 15
  for name in REASONING:
    assert tasks.get(name).max_level == 4


@pytest.mark.parametrize("name", REASONING)
@pytest.mark.parametrize("level", LEVELS)
def test_answers_match_independent_solver(name, level):
  for ex in _examples(name, level):
    assert ex.answer == SOLVERS[name](ex.prompt, level), ex


def test_traces():
  for e in _examples("mul", 4):
    a, b = map(int, _body(e.prompt, "mul:").split("*"))
    *parts, total = e.trace.split(";")
    assert [p.split("=")[0] for p in parts] == [f"{a}*{d}" for d in reversed(str(b))]
    assert all(int(p.split("=")[1]) == a * int(p.split("*")[1].split("=")[0]) for p in parts)
    terms, s = total.split("=")
    assert sum(map(int, terms.split("+"))) == int(s) == a * b
  for e in _examples("modarith", 3):
    m, expr = re.fullmatch(r"mod(\d):(.*)", e.prompt).groups()
    ops = re.findall(r"[-+*]\d", expr)
    want = [_solve_modarith(f"mod{m}:{expr[:1]}{''.join(ops[:i + 1])}", 3) for i in range(len(ops))]
    assert e.trace == ",".join(want)
  for e in _examples("pointer", 4):
    env, v = _ptr_bindings(e.prompt)
    steps = []
    while not v.isdigit():
      steps.append(f"{v}={env[v]}")
      v = env[v]
    assert e.trace == ",".join(steps)
  for e in _examples("reach", 4):
    adj, src, dst = _reach_graph(e.prompt)
    layers, seen, frontier = [], {src}, {src}
    while frontier:
      layers.append("".join(sorted(frontier)))
      if dst in frontier:
        break
      frontier = {b for a in frontier for b in adj[a]} - seen
      seen |= frontier
    assert e.trace == ",".join(layers), e
  for e in _examples("boolean", 4):
    # Replay: each step's group must occur in the current text as an innermost "(group)".
    s = _body(e.prompt, "bool:")
    *groups, last = e.trace.split(",")
    for g in groups:
      expr, v = g.rsplit("=", 1)
      assert f"({expr})" in s and v == _py_bool(expr), (e, g)
      s = s.replace(f"({expr})", v, 1)
    assert "(" not in s and last == f"{s}={e.answer}"
  for e in _examples("eca", 4):
    k, row = re.fullmatch(r"eca:k=(\d+):([01]+)", e.prompt).groups()
    rows = [row := _eca_step(row) for _ in range(int(k))]
    assert e.trace == ",".join(rows[:-1]) and rows[-1] == e.answer
  for e in _examples("stack", 4):
    assert e.trace == ",".join(_stack_run(_body(e.prompt, "stk:")))
  for e in _examples("kdyck", 4):
    fields = e.trace.split(",")
    assert len(fields) == 4
    s = _body(e.prompt, "kdyck:")
    for f, (o, c) in zip(fields, ("()", "[]", "{}", "<>")):
      proj = [ch for ch in s if ch in o + c]
      depths = np.cumsum([1 if ch == o else -1 for ch in proj])
      neg = np.flatnonzero(depths < 0)
      cut = depths[: neg[0]] if len(neg) else depths
      assert f == "".join(map(str, cut)) + ("-" if len(neg) else ""), (e, f)
    assert e.answer == str(int(all(f == "" or f[-1] == "0" for f in fields)))
  assert all(e.trace == "" for e in _examples("induct", 3, n=20))
  assert all(e.trace == "" for e in _examples("eca", 1, n=20) if "k=1:" in e.prompt)


@pytest.mark.parametrize("name", REASONING)
def test_deterministic(name):
  task = tasks.get(name)
  for level in LEVELS:
    a = [tasks.make_example(task, 7, i, level) for i in range(20)]
    b = [tasks.make_example(task, 7, i, level) for i in range(20)]
    assert a == b
    assert len(set(a)) >= (3 if level == 1 else 15), (name, level)
  assert tasks.make_example(task, 1, 0, 4) != tasks.make_example(task, 2, 0, 4)


def test_vocab_encodable():
  vocab = phase1_vocab()
  for name in REASONING:
    for level in LEVELS:
      for e in _examples(name, level, n=50):
        for text in (e.prompt, e.answer, e.trace):
          vocab.encode(text)  # raises ValueError on any unknown character


@pytest.mark.parametrize("name", REASONING)
def test_difficulty_grows(name):
  means = [np.mean([len(e.prompt) for e in _examples(name, level)]) for level in LEVELS]
  assert all(a < b for a, b in zip(means, means[1:])), means


@pytest.mark.parametrize("name", REASONING)
def test_length_limits(name):
  for e in _examples(name, 1):
    assert len(e.answer) <= 3 and len(e.prompt) <= 20, e
  for level in LEVELS:
    for e in _examples(name, level):
      assert len(e.prompt) <= 120 and len(e.trace) + len(e.answer) <= 120, e
      assert e.answer, e


@pytest.mark.parametrize("name", REASONING)
def test_score(name):
  task = tasks.get(name)
  for level in LEVELS:
    for e in _examples(name, level, n=50):
      assert task.score(e, e.answer) == 1.0
      for wrong in ("", "#", e.answer + "x", "x" + e.answer):
        assert 0.0 <= task.score(e, wrong) < 1.0
      if len(e.answer) >= 2:
        bad = "#" + e.answer[1:]
        assert 0.0 < task.score(e, bad) < 1.0, (e, bad)


def test_mul_right_aligned_credit():
  mul = tasks.get("mul")
  e = tasks.Example("mul:12*11", "132", "")
  assert mul.score(e, "32") == pytest.approx(2 / 3)  # dropped leading digit: units still align
  assert mul.score(e, "13") == 0.0


@pytest.mark.parametrize("name", ("kdyck", "reach"))
def test_binary_answers_balanced(name):
  for level in LEVELS:
    answers = [e.answer for e in _examples(name, level, n=200)]
    assert set(answers) <= {"0", "1"}
    assert 0.35 <= answers.count("1") / len(answers) <= 0.65, (name, level)


def test_reach_needs_search():
  # From level 2 a positive is never one edge, and a negative's source has somewhere to go.
  for level in (2, 3, 4):
    for e in _examples("reach", level):
      adj, src, dst = _reach_graph(e.prompt)
      assert (dst not in adj[src]) if e.answer == "1" else adj[src], e


def test_kdyck_negatives_are_small_corruptions():
  # Same length as some positive (even), and at least some keep every per-type count equal,
  # so counting brackets alone cannot separate the classes.
  negs = [_body(e.prompt, "kdyck:") for e in _examples("kdyck", 3, n=200) if e.answer == "0"]
  assert all(len(s) % 2 == 0 for s in negs)
  assert any(all(s.count(o) == s.count(c) for o, c in ("()", "[]", "{}")) for s in negs)


def test_induct_uses_every_rule_kind():
  seen = collections.Counter()
  for e in _examples("induct", 4, n=200):
    x, y = _body(e.prompt, "ind:").split(",")[0].split(">")
    seen["add" if x.isdigit() else "rev" if y == x[::-1] else "other"] += 1
  assert seen["add"] > 20 and seen["rev"] > 20 and seen["other"] > 60, seen


@pytest.mark.parametrize("name", REASONING)
@pytest.mark.parametrize("level", (0, 5))
def test_bad_level(name, level):
  with pytest.raises(ValueError):
    tasks.get(name).generate(np.random.default_rng(0), level)
