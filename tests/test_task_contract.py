"""Task families: the contract every registered task keeps, then each family's own rules.

The contract tests are parametrised over the task registry, so a family added to rf_jax's
task modules is checked without a new test: items are a pure function of (seed, index,
level); every prompt, answer and trace encodes in the vocabulary of the phase that trains
on the family and fits that phase's packed rows; items get harder with the level; the
scorer gives 1.0 for the answer and less for anything else, always within [0, 1].
The family-specific sections check answers and traces with independent solvers.
"""
from __future__ import annotations

import collections
import functools
import itertools
import re

import numpy as np
import pytest

from rf_jax import config as config_lib
from rf_jax import tasks
from rf_jax.data.packing import encode_example
from rf_jax.tasks import base
from rf_jax.tasks.algorithmic import BUILTIN
from rf_jax.tasks.reasoning import REASONING
from rf_jax.vocab import phase1_vocab, text_vocab

SEED = 1234
N = 200
LEVELS = (1, 2, 3, 4)
PHASES = ("phase1", "phase2")  # the phases whose configs name task families to train on

# Only families defined in rf_jax itself: a test module may register a throwaway task, and
# the parametrisation must not depend on which files pytest happened to import first.
REGISTERED = tuple(n for n in tasks.names() if type(tasks.get(n)).__module__.startswith("rf_jax."))


def _examples(name: str, level: int, n: int = N, seed: int = SEED):
  task = tasks.get(name)
  return [tasks.make_example(task, seed, i, level) for i in range(n)]


def _body(prompt: str, tag: str) -> str:
  assert prompt.startswith(tag), (prompt, tag)
  return prompt[len(tag):]


# ---------------------------------------------------------------------------------------------
# The contract, for every registered family.

@functools.lru_cache(maxsize=None)
def _phase_config(name: str):
  """The config of the first phase that trains on `name`; phase 1 for a family none names."""
  for phase in PHASES:
    c = config_lib.load(phase)
    if name in config_lib.names(c.data.tasks):
      return c
  return config_lib.load(PHASES[0])


def _phase_levels(name: str, c) -> range:
  # Phase 1 evaluates every level (those above data.levels are its held-out probe), so all of
  # them must fit; later phases train and evaluate only their data.levels.
  lo, hi = (int(x) for x in c.data.levels)
  return range(1, tasks.get(name).max_level + 1) if c.phase == 1 else range(lo, hi + 1)


def _difficulty(task: tasks.Task, examples) -> float:
  # A family whose hardness is not its length may declare `difficulty(example) -> float`.
  measure = getattr(task, "difficulty", None) or (lambda e: len(e.prompt) + len(e.answer))
  return float(np.mean([measure(e) for e in examples]))


def test_registry_covers_the_families():
  assert set(BUILTIN) | set(REASONING) <= set(REGISTERED)
  assert {"verbal_" + n for n in BUILTIN + REASONING} <= set(REGISTERED)
  assert len(REGISTERED) >= 30


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_deterministic(name):
  task = tasks.get(name)
  for level in range(1, task.max_level + 1):
    a = [tasks.make_example(task, 7, i, level) for i in range(20)]
    b = [tasks.make_example(task, 7, i, level) for i in range(20)]
    assert a == b
    # Different items should mostly differ (level 1 spaces are small, so allow repeats).
    assert len(set(a)) >= (3 if level == 1 else 15), (name, level)
  top = task.max_level
  assert tasks.make_example(task, 1, 0, top) != tasks.make_example(task, 2, 0, top)


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_encodable_and_fits_the_phase(name):
  c = _phase_config(name)
  vocab = text_vocab(c.data.tokenizer)
  for level in _phase_levels(name, c):
    for e in _examples(name, level, n=50):
      for text in (e.prompt, e.answer, e.trace):
        vocab.encode(text)  # raises ValueError on any unknown character
      ids, _ = encode_example(vocab, e, use_trace=True)  # the longer of the two encodings
      assert len(ids) <= c.data.seq_len + 1, (name, level, len(ids), c.name)


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_harder_with_level(name):
  task = tasks.get(name)
  levels = range(1, task.max_level + 1)
  means = [_difficulty(task, _examples(name, level, n=100)) for level in levels]
  assert all(a < b for a, b in zip(means, means[1:])), (name, means)


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_score(name):
  task = tasks.get(name)
  for level in range(1, task.max_level + 1):
    for e in _examples(name, level, n=50):
      assert e.answer, e
      assert task.score(e, e.answer) == 1.0
      for wrong in ("", "#", e.answer + "x", "x" + e.answer):
        assert 0.0 <= task.score(e, wrong) < 1.0, (e, wrong)


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_bad_level(name):
  task = tasks.get(name)
  for level in (0, -1, task.max_level + 1):
    with pytest.raises(ValueError):
      tasks.make_example(task, 0, 0, level)
    with pytest.raises(ValueError):
      task.generate(np.random.default_rng(0), level)


# ---------------------------------------------------------------------------------------------
# The registry.

def test_unknown_task():
  with pytest.raises(ValueError) as err:
    tasks.get("no_such_task")
  for name in BUILTIN:
    assert name in str(err.value)


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


# ---------------------------------------------------------------------------------------------
# Symbolic families (algorithmic and reasoning): rules the contract does not state.

@pytest.mark.parametrize("name", BUILTIN + REASONING)
def test_symbolic_prompts_grow(name):
  means = [np.mean([len(e.prompt) for e in _examples(name, level)]) for level in LEVELS]
  assert all(a < b for a, b in zip(means, means[1:])), means


def test_symbolic_families_use_the_phase1_symbols():
  vocab = phase1_vocab()
  for name in BUILTIN + REASONING:
    assert tasks.get(name).max_level == 4
    for level in LEVELS:
      for e in _examples(name, level, n=50):
        for text in (e.prompt, e.answer, e.trace):
          vocab.encode(text)


@pytest.mark.parametrize("name", BUILTIN + REASONING)
def test_symbolic_partial_credit(name):
  task = tasks.get(name)
  for level in LEVELS:
    for e in _examples(name, level, n=50):
      if len(e.answer) >= 2:
        # One corrupted symbol keeps the rest aligned under either alignment.
        bad = "#" + e.answer[1:]
        assert 0.0 < task.score(e, bad) < 1.0, (e, bad)


# ---------------------------------------------------------------------------------------------
# Algorithmic families (copy, reverse, sort, add, parity, dyck).

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


ALGORITHMIC_SOLVERS = {"copy": _solve_copy, "reverse": _solve_reverse, "sort": _solve_sort,
           "add": _solve_add, "parity": _solve_parity, "dyck": _solve_dyck}


def test_builtin_registered():
  assert set(BUILTIN) <= set(tasks.names())
  assert set(ALGORITHMIC_SOLVERS) == set(BUILTIN)
  for name in BUILTIN:
    assert tasks.get(name).max_level == 4


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("level", LEVELS)
def test_algorithmic_answers_match_independent_solver(name, level):
  for ex in _examples(name, level):
    assert ex.answer == ALGORITHMIC_SOLVERS[name](ex.prompt), ex


@pytest.mark.parametrize("level", LEVELS)
def test_algorithmic_level_bounds(level):
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


def test_algorithmic_level1_is_small():
  for name in BUILTIN:
    assert max(len(e.answer) for e in _examples(name, 1)) <= 3, name


def test_algorithmic_traces():
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


# ---------------------------------------------------------------------------------------------
# Reasoning families, drawn from their own seed.

def _reasoning_examples(name: str, level: int, n: int = 100):
  return _examples(name, level, n, seed=4321)


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


REASONING_SOLVERS = {"mul": _solve_mul, "modarith": _solve_modarith, "pointer": _solve_pointer,
           "reach": _solve_reach, "boolean": _solve_boolean, "eca": _solve_eca,
           "stack": _solve_stack, "kdyck": _solve_kdyck, "induct": _solve_induct}


def test_reasoning_registered():
  assert set(REASONING_SOLVERS) == set(REASONING) and len(REASONING) == 9
  assert set(REASONING) <= set(tasks.names())
  assert len(tasks.names()) >= 15
  for name in REASONING:
    assert tasks.get(name).max_level == 4


@pytest.mark.parametrize("name", REASONING)
@pytest.mark.parametrize("level", LEVELS)
def test_reasoning_answers_match_independent_solver(name, level):
  for ex in _reasoning_examples(name, level):
    assert ex.answer == REASONING_SOLVERS[name](ex.prompt, level), ex


def test_reasoning_traces():
  for e in _reasoning_examples("mul", 4):
    a, b = map(int, _body(e.prompt, "mul:").split("*"))
    *parts, total = e.trace.split(";")
    assert [p.split("=")[0] for p in parts] == [f"{a}*{d}" for d in reversed(str(b))]
    assert all(int(p.split("=")[1]) == a * int(p.split("*")[1].split("=")[0]) for p in parts)
    terms, s = total.split("=")
    assert sum(map(int, terms.split("+"))) == int(s) == a * b
  for e in _reasoning_examples("modarith", 3):
    m, expr = re.fullmatch(r"mod(\d):(.*)", e.prompt).groups()
    ops = re.findall(r"[-+*]\d", expr)
    want = [_solve_modarith(f"mod{m}:{expr[:1]}{''.join(ops[:i + 1])}", 3) for i in range(len(ops))]
    assert e.trace == ",".join(want)
  for e in _reasoning_examples("pointer", 4):
    env, v = _ptr_bindings(e.prompt)
    steps = []
    while not v.isdigit():
      steps.append(f"{v}={env[v]}")
      v = env[v]
    assert e.trace == ",".join(steps)
  for e in _reasoning_examples("reach", 4):
    adj, src, dst = _reach_graph(e.prompt)
    layers, seen, frontier = [], {src}, {src}
    while frontier:
      layers.append("".join(sorted(frontier)))
      if dst in frontier:
        break
      frontier = {b for a in frontier for b in adj[a]} - seen
      seen |= frontier
    assert e.trace == ",".join(layers), e
  for e in _reasoning_examples("boolean", 4):
    # Replay: each step's group must occur in the current text as an innermost "(group)".
    s = _body(e.prompt, "bool:")
    *groups, last = e.trace.split(",")
    for g in groups:
      expr, v = g.rsplit("=", 1)
      assert f"({expr})" in s and v == _py_bool(expr), (e, g)
      s = s.replace(f"({expr})", v, 1)
    assert "(" not in s and last == f"{s}={e.answer}"
  for e in _reasoning_examples("eca", 4):
    k, row = re.fullmatch(r"eca:k=(\d+):([01]+)", e.prompt).groups()
    rows = [row := _eca_step(row) for _ in range(int(k))]
    assert e.trace == ",".join(rows[:-1]) and rows[-1] == e.answer
  for e in _reasoning_examples("stack", 4):
    assert e.trace == ",".join(_stack_run(_body(e.prompt, "stk:")))
  for e in _reasoning_examples("kdyck", 4):
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
  assert all(e.trace == "" for e in _reasoning_examples("induct", 3, n=20))
  assert all(e.trace == "" for e in _reasoning_examples("eca", 1, n=20) if "k=1:" in e.prompt)


@pytest.mark.parametrize("name", REASONING)
def test_reasoning_length_limits(name):
  for e in _reasoning_examples(name, 1):
    assert len(e.answer) <= 3 and len(e.prompt) <= 20, e
  for level in LEVELS:
    for e in _reasoning_examples(name, level):
      assert len(e.prompt) <= 120 and len(e.trace) + len(e.answer) <= 120, e
      assert e.answer, e


def test_mul_right_aligned_credit():
  mul = tasks.get("mul")
  e = tasks.Example("mul:12*11", "132", "")
  assert mul.score(e, "32") == pytest.approx(2 / 3)  # dropped leading digit: units still align
  assert mul.score(e, "13") == 0.0


@pytest.mark.parametrize("name", ("kdyck", "reach"))
def test_binary_answers_balanced(name):
  for level in LEVELS:
    answers = [e.answer for e in _reasoning_examples(name, level, n=200)]
    assert set(answers) <= {"0", "1"}
    assert 0.35 <= answers.count("1") / len(answers) <= 0.65, (name, level)


def test_reach_needs_search():
  # From level 2 a positive is never one edge, and a negative's source has somewhere to go.
  for level in (2, 3, 4):
    for e in _reasoning_examples("reach", level):
      adj, src, dst = _reach_graph(e.prompt)
      assert (dst not in adj[src]) if e.answer == "1" else adj[src], e


def test_kdyck_negatives_are_small_corruptions():
  # Same length as some positive (even), and at least some keep every per-type count equal,
  # so counting brackets alone cannot separate the classes.
  negs = [_body(e.prompt, "kdyck:") for e in _reasoning_examples("kdyck", 3, n=200)
          if e.answer == "0"]
  assert all(len(s) % 2 == 0 for s in negs)
  assert any(all(s.count(o) == s.count(c) for o, c in ("()", "[]", "{}")) for s in negs)


def test_induct_uses_every_rule_kind():
  seen = collections.Counter()
  for e in _reasoning_examples("induct", 4, n=200):
    x, y = _body(e.prompt, "ind:").split(",")[0].split(">")
    seen["add" if x.isdigit() else "rev" if y == x[::-1] else "other"] += 1
  assert seen["add"] > 20 and seen["rev"] > 20 and seen["other"] > 60, seen


# ---------------------------------------------------------------------------------------------
# Program writing in the stack machine's language (stack_write): many answers are right.

def _stack_write_parts(p: str) -> tuple[str, str]:
  allowed, wanted = _body(p, "wstk:").split("=")
  assert allowed.isdigit() and wanted.isdigit() and len(set(allowed)) == len(allowed)
  return allowed, wanted


def _shortest_making(digit: int, allowed: str, longest: int = 6) -> int:
  """Independent brute force: the length of the shortest program that turns an empty stack
  into [digit] using the allowed digits and the opcodes."""
  for n in range(1, longest + 1):
    for prog in itertools.product(sorted(allowed) + list("dsp+*"), repeat=n):
      try:
        states = _stack_run("".join(prog))
      except AssertionError:
        continue
      if states[-1] == str(digit):
        return n
  raise AssertionError(f"{digit} unreachable from {allowed}")


@pytest.mark.parametrize("level", LEVELS)
def test_stack_write_answers_leave_the_wanted_stack_with_the_allowed_digits(level):
  task = tasks.get("stack_write")
  assert task.many_answers and "stack_write" not in config_lib.load("phase1").data.tasks
  for e in _reasoning_examples("stack_write", level, n=60):
    allowed, wanted = _stack_write_parts(e.prompt)
    assert len(allowed) == (3, 3, 2, 2)[level - 1] and len(wanted) == level
    assert set(c for c in e.answer if c.isdigit()) <= set(allowed)
    assert _stack_run(e.answer)[-1] == wanted and e.trace == ",".join(_stack_run(e.answer))
  # The canonical answer is shortest: each wanted digit costs what brute force finds.
  for e in _reasoning_examples("stack_write", 2, n=8):
    allowed, wanted = _stack_write_parts(e.prompt)
    assert len(e.answer) == sum(_shortest_making(int(d), allowed) for d in wanted), e


def test_stack_write_scores_any_right_program_and_rejects_what_cannot_run():
  task = tasks.get("stack_write")
  e = tasks.Example("wstk:37=94", "33*77+", "")
  assert task.score(e, "33*77+") == 1.0
  assert task.score(e, "33*77+dp") == 1.0            # another right program
  assert task.score(e, "77+33*s") == 1.0             # built the other way round, then swapped
  assert task.score(e, "33*77*") == pytest.approx(0.5)  # 9,9: half the stack right
  assert task.score(e, "94") == 0.0                  # 9 and 4 are not allowed pushes
  assert task.score(e, "3+") == 0.0                  # pops an empty stack
  assert task.score(e, "33*x") == 0.0
  renamed_prompt = tasks.Example("QZV is wstk, # is =\nQZV:37#94", "33*77+", "")
  assert task.score(renamed_prompt, "33*77+") == 1.0  # the renamed probe's prompts parse too
