"""Phase-2 bridging families: every phase-1 problem, asked in plain English.

`verbal_<name>` first draws exactly the problem `<name>` draws from the same rng state, then
spends further draws on a paraphrase template and on writing numbers in digits or in words.
Answer, trace and scorer stay the base family's, so phase-1 skill is measured on the same
targets and only the reading changes. Each template states everything the symbolic prompt
does, plus what to output; tests/test_bridging.py checks both.

Prompts are plain ASCII from the phase-1 symbol set (no double quotes, no newlines), at most
about 110 / 200 / 360 characters at levels 1 / 2 / 3. Number words never contain commas,
because commas separate list items ("three hundred and two", but "four, seven" for the digit
string 47).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from rf_jax.tasks.algorithmic import BUILTIN
from rf_jax.tasks.base import Example, Task, check_level, get, register
from rf_jax.tasks.reasoning import REASONING

VERBAL_PREFIX = "verbal_"
BASE_FAMILIES = BUILTIN + REASONING


def verbal_name(name: str) -> str:
  return VERBAL_PREFIX + name


def base_name(name: str) -> str:
  return name[len(VERBAL_PREFIX):] if name.startswith(VERBAL_PREFIX) else name


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "- - twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
  """302 -> 'three hundred and two', 1005 -> 'one thousand and five' (up to 999999)."""
  if n < 20:
    return _ONES[n]
  if n < 100:
    return _TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else "")
  if n < 1000:
    return f"{_ONES[n // 100]} hundred" + (f" and {number_words(n % 100)}" if n % 100 else "")
  rest = n % 1000
  tail = "" if not rest else (" and " if rest < 100 else " ") + number_words(rest)
  return f"{number_words(n // 1000)} thousand{tail}"


def _body(prompt: str) -> str:
  return prompt.split(":", 1)[1]


def _coin(rng: np.random.Generator) -> bool:
  return bool(rng.random() < 0.5)


def _say(x: str | int, words: bool) -> str:
  return number_words(int(x)) if words else str(x)


def _series(items: list[str], last: str = " and ") -> str:
  return items[0] if len(items) == 1 else ", ".join(items[:-1]) + last + items[-1]


def _plural(n: int, one: str, many: str) -> str:
  return one if n == 1 else many


def _digit_list(s: str, rng: np.random.Generator, noun: str) -> str:
  # Digit strings may start with 0, so they are read digit by digit, never as one number.
  style = int(rng.integers(3))
  if style == 0:
    return f"the {noun} string {s}"
  items = s if style == 1 else [_ONES[int(d)] for d in s]
  return f"the {_plural(len(s), noun, noun + 's')} {', '.join(items)}"


def _letter_list(s: str, rng: np.random.Generator) -> str:
  style = int(rng.integers(4))
  if style == 0:
    return f"the string '{s}'"
  if style == 1:
    return f"the sequence {'-'.join(s)}"
  return f"the {_plural(len(s), 'letter', 'letters')} {(', ' if style == 2 else ' ').join(s)}"


def _letters(prompt: str, rng: np.random.Generator) -> dict:
  return {"seq": _letter_list(_body(prompt), rng)}


def _sort(prompt: str, rng: np.random.Generator) -> dict:
  return {"d": _digit_list(_body(prompt), rng, "digit")}


def _parity(prompt: str, rng: np.random.Generator) -> dict:
  return {"b": _digit_list(_body(prompt), rng, "bit")}


def _words_for(a: str, rng: np.random.Generator) -> bool:
  # "the sum of three hundred and five" could be 305 alone: a first operand ending in
  # hundred/thousand stays in digits whenever the templates join the operands with "and".
  return _coin(rng) and (int(a) < 100 or int(a) % 100 != 0)


def _add(prompt: str, rng: np.random.Generator) -> dict:
  a, b = _body(prompt).split("+")
  w = _words_for(a, rng)
  return {"a": _say(a, w), "b": _say(b, w)}


def _mul(prompt: str, rng: np.random.Generator) -> dict:
  a, b = _body(prompt).split("*")
  w = _words_for(a, rng)
  return {"a": _say(a, w), "b": _say(b, w),
          "pens": f"{_say(a, w)} {_plural(int(a), 'pen', 'pens')}",
          "boxes": f"{_say(b, w)} {_plural(int(b), 'box', 'boxes')}"}


_BRACKET_NAMES = {"(": "open round", ")": "close round", "[": "open square",
                  "]": "close square", "{": "open curly", "}": "close curly",
                  "<": "open angle", ">": "close angle"}


def _brackets(prompt: str, rng: np.random.Generator, named: bool = True) -> dict:
  s = _body(prompt)
  style = int(rng.integers(3 if named else 2))
  shown = (f"'{s}'" if style == 0 else " ".join(s) if style == 1
           else ", ".join(_BRACKET_NAMES[c] for c in s))
  return {"s": shown}


def _kdyck(prompt: str, rng: np.random.Generator) -> dict:
  # Named brackets would push kdyck's long strings past the length budget.
  return _brackets(prompt, rng, named=False)


_MOD_OPS = {"+": ("add {}", "plus"), "-": ("subtract {}", "minus"),
            "*": ("multiply by {}", "times")}


def _modarith(prompt: str, rng: np.random.Generator) -> dict:
  tag, body = prompt.split(":", 1)
  m = int(tag[3:])
  xs, ops = body[0::2], body[1::2]  # residues are single digits (modulus <= 9)
  w = _coin(rng)
  expr = flat = _say(xs[0], w)
  for i, (op, x) in enumerate(zip(ops, xs[1:])):
    tail = f" {_MOD_OPS[op][1] if w else op} {_say(x, w)}"
    # Left-nested brackets make the left-to-right order explicit without a rule to learn.
    expr = (f"({expr})" if i else expr) + tail
    flat += tail
  ops_said = [_MOD_OPS[op][0].format(_say(x, w)) for op, x in zip(ops, xs[1:])]
  return {"m": _say(m, w), "x0": _say(xs[0], w), "top": m - 1, "expr": expr, "flat": flat,
          "ops": _series(ops_said, ", then ")}


def _pointer(prompt: str, rng: np.random.Generator) -> dict:
  binds, query = _body(prompt).split(";")
  pairs = [b.split("=") for b in binds.split(",")]
  w = _coin(rng)
  val = lambda v: _say(v, w) if v.isdigit() else v  # noqa: E731
  return {"q": query[0],
          "let": _series([f"{a} be {val(b)}" for a, b in pairs]),
          "means": _series([f"{a} is {val(b)}" for a, b in pairs]),
          "eq": ", ".join(f"{a} = {val(b)}" for a, b in pairs),
          "arrows": ", ".join(f"{a} -> {val(b)}" for a, b in pairs)}


def _reach(prompt: str, rng: np.random.Generator) -> dict:
  edges, query = _body(prompt).split(";")
  es = edges.split(",")
  return {"s": query[0], "t": query[2],
          "roads": _series([f"from {a} to {b}" for a, b in es]),
          "pairs": _series([f"{a} to {b}" for a, b in es]),
          "arrows": ", ".join(f"{a}->{b}" for a, b in es)}


def _bool_parse(s: str):
  """The minimal-bracket formula back to a tree: ! binds tightest, then &, then |."""
  pos = 0

  def atom():
    nonlocal pos
    c = s[pos]
    pos += 1
    if c == "!":
      return ("!", atom())
    if c == "(":
      node = chain("|")
      pos += 1  # the closing bracket
      return node
    return c

  def chain(op):
    nonlocal pos
    sub = atom if op == "&" else lambda: chain("&")
    node = sub()
    while pos < len(s) and s[pos] == op:
      pos += 1
      node = (op, node, sub())
    return node

  return chain("|")


_BOOL_WORDS = {"1": "true", "0": "false", "!": "not ", "&": " and ", "|": " or "}


def _bool_full(node) -> str:
  # Every binary operation bracketed: the reader needs no precedence rule at all.
  if isinstance(node, str):
    return _BOOL_WORDS[node]
  if node[0] == "!":
    return "not " + _bool_full(node[1])
  return f"({_bool_full(node[1])}{_BOOL_WORDS[node[0]]}{_bool_full(node[2])})"


def _boolean(prompt: str, rng: np.random.Generator) -> dict:
  s = _body(prompt)
  tree = _bool_parse(s)
  full = _bool_full(tree)
  return {"words": "".join(_BOOL_WORDS.get(c, c) for c in s),
          "bits": "".join(_BOOL_WORDS.get(c, c) if c in "!&|" else c for c in s),
          "full": full[1:-1] if tree[0] in "&|" else full}


def _eca(prompt: str, rng: np.random.Generator) -> dict:
  _, k_text, row = prompt.split(":")
  k, w = int(k_text[2:]), _coin(rng)
  style = int(rng.integers(3))
  cells = row if style == 0 else ", ".join(row if style == 1 else [_ONES[int(c)] for c in row])
  rule = "rule 110"
  if len(row) >= 4 and _coin(rng):  # level-1 rows are 2-3 cells and must stay terse
    rule += " (left, self, right reading 111, 100 or 000 gives 0, all else 1)"
  return {"row": cells, "rule": rule,
          "times": {1: "once", 2: "twice"}.get(k) or f"{_say(k, w)} times",
          "steps": f"{_say(k, w)} {_plural(k, 'step', 'steps')}"}


_STACK_OPS = {"+": "add the top two mod 10", "*": "multiply the top two mod 10",
              "d": "duplicate the top", "s": "swap the top two", "p": "pop"}


def _stack(prompt: str, rng: np.random.Generator) -> dict:
  w = _coin(rng)
  ops = [f"push {_say(c, w)}" if c.isdigit() else _STACK_OPS[c] for c in _body(prompt)]
  return {"ops": ", ".join(ops)}


def _induct(prompt: str, rng: np.random.Generator) -> dict:
  shown, query = _body(prompt).split(";")
  pairs = [x.split(">") for x in shown.split(",")]
  q = query[:-2]  # drop ">?"
  digits = q.isdigit()
  if digits and _coin(rng):
    show = lambda x: "-".join(_ONES[int(d)] for d in x)  # noqa: E731
  else:
    show = (lambda x: x) if digits else (lambda x: f"'{x}'")  # noqa: E731
  pairs = [(show(x), show(y)) for x, y in pairs]
  return {"q": show(q), "form": "Answer in digits." if digits else "Answer without quotes.",
          "turns": _series([f"{x} into {y}" for x, y in pairs]),
          "arrows": ", ".join(f"{x} -> {y}" for x, y in pairs),
          "maps": _series([f"{x} to {y}" for x, y in pairs]),
          "gives": "; ".join(f"{x} gives {y}" for x, y in pairs),
          "becomes": _series([f"{x} becomes {y}" for x, y in pairs])}


# family -> (fields from the symbolic prompt, paraphrase templates over those fields).
# Templates never open with a field: a capitalised variable name would be a different name.
_FAMILIES: dict[str, tuple[Callable[[str, np.random.Generator], dict], tuple[str, ...]]] = {
    "copy": (_letters, (
        "Copy {seq} exactly, with no spaces between the letters.",
        "Write {seq} out again, letter for letter, as a single word.",
        "Repeat {seq} without changing anything, with the letters run together.",
        "What do you get if you copy {seq} unchanged? Answer with the letters joined up.",
        "Echo {seq} back as one unbroken string of letters.")),
    "reverse": (_letters, (
        "Write {seq} backwards, as one word with no spaces.",
        "Reverse the order of {seq} and give the letters joined together.",
        "Read {seq} from right to left. What do you get? Write it without spaces.",
        "Spell {seq} in reverse, last letter first, with no separators.",
        "If you flip {seq} end to end, what comes out? Answer as one word.")),
    "sort": (_sort, (
        "Sort {d} from smallest to largest and write the result as one string of digits.",
        "Put {d} in ascending order, keeping any repeats, and answer with no spaces.",
        "Rearrange {d} so that no digit is bigger than the next. Write them together.",
        "What do you get when you list {d} in increasing order? Run the digits together.",
        "Order {d} from lowest to highest and reply with a single string of digits.")),
    "add": (_add, (
        "What is {a} plus {b}? Answer in digits.",
        "Add {a} and {b}, and give the sum in digits.",
        "Work out the sum of {a} and {b}. Write the answer using digits.",
        "A counter shows {a} and then goes up by {b}. What does it show now? Answer in digits.",
        "If you put {a} together with {b}, what total do you get? Give it in digits.")),
    "parity": (_parity, (
        "Count the ones in {b}. Answer 1 if the count is odd and 0 if it is even.",
        "Is the number of 1s in {b} odd? Reply 1 for odd and 0 for even.",
        "What is the parity of {b}? Write 1 for an odd number of ones, otherwise 0.",
        "XOR together all of {b} and give the result, 0 or 1.",
        "A lamp starts off and each 1 in {b} flips it. Answer 1 if it ends on, 0 if off.")),
    "dyck": (_brackets, (
        "Finish the brackets {s} with the fewest closers, written as symbols.",
        "Which closing brackets, innermost first, balance {s}? Give the symbols.",
        "Close all brackets left open in {s}. Reply with only the closing symbols.",
        "What shortest run of closers makes {s} balanced? Write them as symbols.")),
    "mul": (_mul, (
        "What is {a} times {b}? Answer in digits.",
        "Multiply {a} by {b} and write the product in digits.",
        "Find the product of {a} and {b}, written with digits.",
        "Each box holds {pens}. How many pens are there in {boxes}? Answer in digits.",
        "What do you get when {a} is multiplied by {b}? Give the result in digits.")),
    "modarith": (_modarith, (
        "Start at {x0}, then {ops}. What is the result modulo {m} (0 to {top})?",
        "In arithmetic modulo {m}, evaluate {expr}. Give a digit from 0 to {top}.",
        "Working strictly left to right, what is {flat} modulo {m}? Answer 0 to {top}.",
        "A counter modulo {m} starts at {x0}; {ops}. What does it read (0 to {top})?")),
    "pointer": (_pointer, (
        "Let {let}. Following the chain, what digit is {q}?",
        "Each letter stands for a digit or another letter: {means}. Which digit is {q}?",
        "Given {eq}, follow the assignments and give the digit that {q} equals.",
        "Chase the pointers {arrows} starting from {q}. Which digit do you end on?")),
    "reach": (_reach, (
        "One-way roads go {roads}. Can you drive from {s} to {t}? 1 for yes, 0 for no.",
        "A directed graph has the edges {arrows}. Is {t} reachable from {s}? 1 if so, else 0.",
        "Notes pass only {pairs}. Can a note get from {s} to {t}? Answer 1 if so, else 0.",
        "Flights run one way {roads}. Can you get from {s} to {t}? 1 for yes, 0 for no.")),
    "boolean": (_boolean, (
        "Given that and binds before or, is {words} true? 1 for yes, 0 for no.",
        "Work out {full}. Write 1 if it is true and 0 if it is false.",
        "With 1 as true and 0 as false, what is {bits}? Apply not, then and, then or.",
        "Tell me whether {full} is true: answer 1 if so, otherwise 0.")),
    "eca": (_eca, (
        "Apply cellular automaton {rule} {times} to the row {row}, with 0s past the ends. "
        "Answer in digits.",
        "Run {rule} for {steps} on the cells {row}, edges fixed at 0. Write the new row in digits.",
        "Under {rule} with zero edges, what does the row {row} become after {steps}? Digits only.",
        "Update the cells {row} {times} by {rule}, outside cells being 0. Final row, in digits?")),
    "stack": (_stack, (
        "On an empty stack, {ops}. Give the digits bottom to top.",
        "From an empty stack, {ops}. What remains, bottom first?",
        "Run on an empty stack: {ops}. What is left, bottom up?",
        "A card pile starts empty; {ops}. Read it bottom up.")),
    "kdyck": (_kdyck, (
        "Is each bracket type in {s} balanced on its own, ignoring the others? 1 yes, 0 no.",
        "Taking each kind of bracket separately, does {s} open and close properly? 1 yes, 0 no.",
        "Answer 1 if every bracket kind in {s} balances by itself, else 0.",
        "Check {s} one bracket kind at a time. All balanced? Reply 1 for yes, 0 for no.")),
    "induct": (_induct, (
        "A hidden rule turns {turns}. What does it turn {q} into? {form}",
        "Find the pattern in {arrows} and apply it to {q}. {form}",
        "A secret rule maps {maps}. What does it map {q} to? {form}",
        "Examples of one rule: {gives}. So what does {q} give? {form}",
        "If {becomes}, what should {q} become? {form}")),
}

TEMPLATES = {name: templates for name, (_, templates) in _FAMILIES.items()}


def render(name: str, example: Example, rng: np.random.Generator) -> str:
  """English for a base-family example; draws from `rng` after the base problem's draws."""
  fields, templates = _FAMILIES[name]
  values = fields(example.prompt, rng)
  return templates[int(rng.integers(len(templates)))].format(**values)


def _verbal_task(base: type[Task]) -> type[Task]:
  inner = base()

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    ex = inner.generate(rng, level)
    return Example(render(base.name, ex, rng), ex.answer, ex.trace)

  def score(self, example: Example, output: str) -> float:
    return inner.score(example, output)

  def token_rewards(self, example: Example, output: str) -> list[float]:
    return inner.token_rewards(example, output)

  return register(type(f"Verbal{base.__name__}", (Task,), {
      "name": verbal_name(base.name), "max_level": base.max_level, "generate": generate,
      "score": score, "token_rewards": token_rewards, "__module__": __name__,
      "__doc__": f"The `{base.name}` family with its prompt in English."}))


VERBAL = tuple(_verbal_task(type(get(n))).name for n in BASE_FAMILIES)
