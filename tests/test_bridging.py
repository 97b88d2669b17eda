"""Bridging families: the same problem as the base family, in English that keeps all of it."""
from __future__ import annotations

import functools
import re
import string

import numpy as np
import pytest

from rf_jax import tasks
from rf_jax.tasks import bridging
from rf_jax.tasks.bridging import BASE_FAMILIES, TEMPLATES, base_name, verbal_name

LEVELS = (1, 2, 3)
N = 300  # items per family and level, from default_rng(0..N-1)
MAX_LEN = {1: 110, 2: 200, 3: 360}
ALLOWED = set(string.ascii_letters + string.digits + "+-*/%=<>()[]{},.:;|&^!?#@_~$' ")


@functools.lru_cache(maxsize=None)
def _pairs(name: str, level: int):
  """(base example, verbal example) drawn from the same rng seed."""
  base, verbal = tasks.get(name), tasks.get(verbal_name(name))
  return [(base.generate(np.random.default_rng(k), level),
           verbal.generate(np.random.default_rng(k), level)) for k in range(N)]


# A reader for English numbers, independent of the module's writer. Number words join
# into one number the way English does ("three hundred and two", "forty-seven"); a unit
# after a unit starts a new number, so "four, seven" and "five-two-eight" read digit by digit.
# Any other word, or a sentence mark, leaves a _BREAK: a run of digits cannot span it.
_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten "
                                     "eleven twelve thirteen fourteen fifteen sixteen "
                                     "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty "
                                         "ninety".split(), start=2)}
_BREAK, _USED = "|", ""


def _numbers(text: str, digits: bool = True, words: bool = True) -> list[str]:
  out, big, small, last = [], 0, 0, None  # last: kind of the previous word in this number

  def emit(item: str) -> None:
    if item != _BREAK or (out and out[-1] != _BREAK):
      out.append(item)

  def flush():
    nonlocal big, small, last
    if last is not None:
      emit(str(big + small) if words else _BREAK)
    big, small, last = 0, 0, None

  for tok in re.findall(r"\d+|[a-z]+|[.;:?!]", text.lower()):
    if tok.isdigit() or tok in ("once", "twice"):
      flush()
      wanted = digits if tok.isdigit() else words
      emit({"once": "1", "twice": "2"}.get(tok, tok) if wanted else _BREAK)
    elif tok in _UNITS or tok in _TENS:
      v = _UNITS.get(tok, _TENS.get(tok))
      joins = last in ("hundred", "thousand", "and") or (last == "tens" and v < 10)
      if not joins:
        flush()
      small += v
      last = "tens" if v >= 20 else "small"
    elif tok == "hundred" and last == "small":
      small *= 100
      last = "hundred"
    elif tok == "thousand" and last is not None and last != "and":
      big, small, last = (big + small) * 1000, 0, "thousand"
    elif tok == "and" and last in ("hundred", "thousand"):
      last = "and"
    else:
      flush()  # a pending "and" was a conjunction: the number ended before it
      emit(_BREAK)
  flush()
  return out


def _plain(numbers: list[str]) -> list[str]:
  return [n for n in numbers if n != _BREAK]


def test_number_reader_and_writer_agree():
  for n in [0, 7, 13, 40, 47, 100, 302, 999, 1000, 1005, 1100, 4321, 20017, 99999, 120400]:
    assert _plain(_numbers(bridging.number_words(n))) == [str(n)], n
  assert bridging.number_words(302) == "three hundred and two"
  assert _numbers("add three hundred and two and five, then four, seven.") == \
      ["302", "|", "5", "|", "4", "7", "|"]
  assert _plain(_numbers("five-two-eight becomes two nine five")) == list("528295")


def _take(pool: list[str], token: str, start: int = 0) -> int:
  """Marks the first `token` at or after `start` in `pool` used, as one number or as a run
  of single digits, and returns the index just past it (-1 if there is none)."""
  for i in range(start, len(pool)):
    if pool[i] == token or (len(token) > 1 and pool[i:i + len(token)] == list(token)):
      n = 1 if pool[i] == token else len(token)
      pool[i:i + n] = [_USED] * n
      return i + n
  return -1


def _number_tokens(name: str, body: str) -> list[str]:
  return re.findall(r"\d" if name == "stack" else r"\d+", body)  # a stack push is one digit


def _digits_of(text: str) -> str:
  return "".join(_plain(_numbers(text)))


# Fields that restate the rule or the answer range rather than the problem, with patterns
# that keep a lazy match from splitting them ("rule 110 once" is rule + times, not rule alone).
_META = {"rule": r"rule 110(?: \([^()]*\))?", "top": r"\d", "times": r"once|twice|\w+ times",
         "steps": r"\w+ steps?", "form": r"[A-Z][a-z ]+\."}


def _fields(name: str, prompt: str) -> tuple[int, dict, str]:
  """(template index, field values, the prompt with its rule/range fields and any fixed
  wording that holds a digit replaced by ' ; ') for the one template that produced it."""
  hits = []
  for i, template in enumerate(TEMPLATES[name]):
    parsed = [(lit, field) for lit, field, _, _ in string.Formatter().parse(template)]
    order = [field for _, field in parsed if field]
    assert len(set(order)) == len(order), template
    m = re.fullmatch("".join(re.escape(lit) + (f"(?P<{field}>{_META.get(field, '.+?')})"
                                               if field else "") for lit, field in parsed),
                     prompt)
    if m:
      hits.append((i, m))
  assert len(hits) == 1, (name, prompt, [i for i, _ in hits])
  i, m = hits[0]
  said, pos = "", 0
  for field in m.groupdict():
    start, end = m.span(field)
    fixed = prompt[pos:start]  # template wording: its digits ("1 for yes") are not the problem's
    said += " ; " if re.search(r"\d", fixed) else fixed
    said += " ; " if field in _META else prompt[start:end]
    pos = end
  said += " ; " if re.search(r"\d", prompt[pos:]) else prompt[pos:]
  return i, m.groupdict(), said


_BRACKET_NAMES = {"open round": "(", "close round": ")", "open square": "[",
                  "close square": "]", "open curly": "{", "close curly": "}",
                  "open angle": "<", "close angle": ">"}
_STACK_OPS = {"add the top two mod 10": "+", "multiply the top two mod 10": "*",
              "duplicate the top": "d", "swap the top two": "s", "pop": "p"}


def _boolean_value(shown: str) -> str:
  # Python's not > and > or is the task's own precedence.
  expr = shown.replace("!", " not ").replace("&", " and ").replace("|", " or ")
  return str(int(bool(eval(expr))))  # noqa: S307  (only 0, 1, brackets and and/or/not)


def _check_information(name: str, sym: str, text: str, answer: str) -> None:
  """Reads the problem back from the template's fields (not its fixed wording)."""
  _, f, said = _fields(name, text)
  head, body = sym.split(":", 1)
  if name not in ("boolean", "eca"):
    # Every number, in digits or in words, each use once and in the symbolic order; a
    # modulus may be said anywhere.
    pool, at = _numbers(said), 0
    for token in _number_tokens(name, body):
      at = _take(pool, token, at)
      assert at >= 0, (token, sym, text)
    for token in re.findall(r"\d+", head):
      assert _take(pool, token) >= 0, (token, sym, text)
  if name in ("copy", "reverse"):
    assert re.sub(r"^the (string|sequence|letters?) |[ ,'-]", "", f["seq"]) == body, (sym, text)
  elif name == "pointer":
    facts, query = body.split(";")
    binds = next(f[k] for k in ("let", "means", "eq", "arrows") if k in f)
    said_binds = re.findall(r"\b([a-z]) (?:be|is|=|->) (\w+)", binds)
    assert [(a, _digits_of(b) or b) for a, b in said_binds] == \
        [tuple(b.split("=")) for b in facts.split(",")], (sym, text)
    assert f["q"] == query[0], (sym, text)
  elif name == "reach":
    edges, query = body.split(";")
    said_edges = next(f[k] for k in ("roads", "pairs", "arrows") if k in f)
    assert re.findall(r"\b([a-z])(?: to |->)([a-z])\b", said_edges) == \
        [tuple(e) for e in edges.split(",")], (sym, text)
    assert (f["s"], f["t"]) == (query[0], query[2]), (sym, text)
  elif name == "induct" and not re.search(r"\d", body):
    assert re.findall(r"'([a-f]+)'", said) == re.findall(r"[a-f]+", body), (sym, text)
  elif name in ("dyck", "kdyck"):
    shown = f["s"]
    for words, symbol in _BRACKET_NAMES.items():
      shown = shown.replace(words, symbol)
    assert re.sub(r"[ ,']", "", shown) == body, (sym, text)
  elif name == "modarith":
    spoken = next(f[k] for k in ("ops", "expr", "flat") if k in f)
    words = {"add": "+", "plus": "+", "subtract": "-", "minus": "-", "multiply": "*",
             "times": "*"}
    ops = [words.get(w, w) for w in re.findall(r"[a-z]+|[-+*]", spoken) if w != "by"]
    assert [o for o in ops if o in "+-*"] == list(body[1::2]), (sym, text)
  elif name == "stack":
    ops = f["ops"].split(", ")
    assert "".join(_STACK_OPS.get(o) or _digits_of(o) for o in ops) == body, (sym, text)
  elif name == "eca":
    steps, row = body.split(":")
    assert f["rule"].startswith("rule 110") and _digits_of(f["row"]) == row, (sym, text)
    assert _digits_of(f.get("times") or f["steps"]) == steps[2:], (sym, text)
  elif name == "boolean":
    expr = next(v for k, v in f.items() if k in ("words", "bits", "full"))
    shown = expr.replace("true", "1").replace("false", "0").replace("not ", "!")
    shown = shown.replace(" and ", "&").replace(" or ", "|")
    assert re.sub("[()]", "", shown) == re.sub("[()]", "", body), (sym, text)
    # The English may bracket differently (or fully); it must still mean the same formula.
    assert _boolean_value(shown) == answer == _boolean_value(body), (sym, text)


def test_registry_and_names():
  assert len(BASE_FAMILIES) == 15 and len(set(BASE_FAMILIES)) == 15
  assert set(TEMPLATES) == set(BASE_FAMILIES)
  for name in BASE_FAMILIES:
    v = verbal_name(name)
    assert v == "verbal_" + name and v in tasks.names() and v in bridging.VERBAL
    assert base_name(v) == name and base_name(name) == name
    assert tasks.get(v).max_level == tasks.get(name).max_level
    assert len(TEMPLATES[name]) >= 4


@pytest.mark.parametrize("name", BASE_FAMILIES)
def test_deterministic(name):
  task = tasks.get(verbal_name(name))
  for level in LEVELS:
    a = [tasks.make_example(task, 5, i, level) for i in range(20)]
    assert a == [tasks.make_example(task, 5, i, level) for i in range(20)]
    assert len({e.prompt for e in a}) >= 10, (name, level)


@pytest.mark.parametrize("name", BASE_FAMILIES)
def test_same_problem_and_answer(name):
  for level in LEVELS:
    for k, (b, v) in enumerate(_pairs(name, level)):
      assert (v.answer, v.trace) == (b.answer, b.trace), (b, v)
      # The base problem comes first from the rng; rendering it continues the same stream.
      rng = np.random.default_rng(k)
      assert tasks.get(name).generate(rng, level) == b
      assert bridging.render(name, b, rng) == v.prompt


@pytest.mark.parametrize("name", BASE_FAMILIES)
def test_templates_vary(name):
  seen = set()
  for level in LEVELS:
    used = [_fields(name, v.prompt)[0] for _, v in _pairs(name, level)[:200]]
    assert len(set(used)) >= 3, (name, level, sorted(set(used)))
    seen |= set(used)
  assert seen == set(range(len(TEMPLATES[name])))


@pytest.mark.parametrize("name", BASE_FAMILIES)
def test_information_is_kept(name):
  for level in LEVELS:
    for b, v in _pairs(name, level):
      _check_information(name, b.prompt, v.prompt, b.answer)


@pytest.mark.parametrize("name", ["add", "mul", "sort", "parity", "modarith", "pointer",
                                  "stack", "induct"])
def test_numbers_in_words_and_in_digits(name):
  b = next(b for b, _ in _pairs(name, 2) if re.search(r"\d", b.prompt.split(":", 1)[1]))
  tokens = _number_tokens(name, b.prompt.split(":", 1)[1])
  styles = set()
  for k in range(60):
    text = bridging.render(name, b, np.random.default_rng(k))
    for style, kw in (("digits", {"words": False}), ("words", {"digits": False})):
      pool = _numbers(text, **kw)
      if all(_take(pool, t) >= 0 for t in tokens):
        styles.add(style)
  assert styles == {"digits", "words"}, (name, b.prompt, styles)


@pytest.mark.parametrize("name", BASE_FAMILIES)
def test_charset_and_length(name):
  for level in LEVELS:
    prompts = [v.prompt for _, v in _pairs(name, level)]
    for p in prompts:
      assert set(p) <= ALLOWED, (name, p, set(p) - ALLOWED)
      assert p == p.strip() and "  " not in p, p
      assert p[0].isupper() and p[-1] in ".?", p
    assert max(map(len, prompts)) <= MAX_LEN[level], (name, level, max(prompts, key=len))


@pytest.mark.parametrize("name", BASE_FAMILIES)
def test_scorer_is_the_base_scorer(name):
  base, verbal = tasks.get(name), tasks.get(verbal_name(name))
  for b, v in _pairs(name, 2)[:30]:
    assert verbal.score(v, v.answer) == 1.0
    wrong = "9" + v.answer[1:] if v.answer[0] != "9" else "8" + v.answer[1:]
    assert verbal.score(v, wrong) < 1.0
    for out in (wrong, v.answer[:-1], "x" + v.answer, v.answer[::-1], ""):
      assert verbal.score(v, out) == base.score(b, out), (name, out)
