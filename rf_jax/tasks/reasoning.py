"""Multi-step reasoning task families: mul, modarith, pointer, reach, boolean, eca, stack,
kdyck, induct.

Same contract as algorithmic.py: a short prompt tag, levels 1..4 where level 1 is tiny
(answers of 1-3 symbols, prompts under ~20 chars) and level 4 still fits a 256-token row
(prompt <= 120 chars, trace + answer <= 120 chars). Sizes come from per-level inclusive
(lo, hi) ranges that move up with level, so mean prompt length strictly grows with it.
Generators that need a property they cannot build directly (a wanted answer, a corrupted
word, an identifiable rule) redraw from `rng` until it holds, which stays reproducible.
"""
from __future__ import annotations

import string

import numpy as np

from rf_jax.tasks.base import (Example, Task, check_level, position_agreement, positional_credit,
                               register)

REASONING = ("mul", "modarith", "pointer", "reach", "boolean", "eca", "stack", "kdyck",
             "induct")

_LETTERS = string.ascii_lowercase
_BRACKETS = ("()", "[]", "{}", "<>")  # kdyck level l uses the first l types


def _between(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
  return int(rng.integers(lo_hi[0], lo_hi[1] + 1))


def _names(rng: np.random.Generator, n: int) -> list[str]:
  # Random letters rather than a, b, c...: the name order must carry no information.
  return [_LETTERS[i] for i in rng.permutation(len(_LETTERS))[:n]]


def _number(rng: np.random.Generator, digits: int) -> int:
  return int(rng.integers(10 ** (digits - 1), 10 ** digits))  # 1-digit: 1..9, never 0


@register
class Mul(Task):
  """`mul:a*b` -> a*b. Digit counts per level: 1x1, 2x1, (2-3)x(1-2), 3x(2-3).

  Trace: `a*d=p` for each digit d of b (units first), then, when b has several digits, the
  sum of the shifted partial products. 123*45 -> "123*5=615;123*4=492;615+4920=5535".
  """
  name = "mul"
  max_level = 4
  _A = ((1, 1), (2, 2), (2, 3), (3, 3))
  _B = ((1, 1), (1, 1), (1, 2), (2, 3))

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    a = _number(rng, _between(rng, self._A[level - 1]))
    b = _number(rng, _between(rng, self._B[level - 1]))
    ds = [int(d) for d in reversed(str(b))]
    steps = [f"{a}*{d}={a * d}" for d in ds]
    if len(ds) > 1:
      steps.append("+".join(str(a * d * 10 ** i) for i, d in enumerate(ds)) + f"={a * b}")
    return Example(f"mul:{a}*{b}", str(a * b), ";".join(steps))

  def score(self, example: Example, output: str) -> float:
    return positional_credit(example.answer[::-1], output[::-1])  # units line up, as in add

  def token_rewards(self, example: Example, output: str) -> list[float]:
    return position_agreement(example.answer, output, from_end=True)


@register
class ModArith(Task):
  """`modM:x0 o1 x1 o2 x2 ...` evaluated strictly LEFT TO RIGHT (no precedence), mod M.

  Operands are residues 0..M-1, ops are + - *, so "mod7:3+5*2" is ((3+5)*2)%7 = 2. The
  answer is one digit (M <= 9). Trace: the running value after each op, joined by ','.
  """
  name = "modarith"
  max_level = 4
  _OPS = ((1, 2), (3, 5), (5, 8), (8, 12))
  _MOD = ((3, 6), (4, 7), (5, 8), (6, 9))

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    m, n = _between(rng, self._MOD[level - 1]), _between(rng, self._OPS[level - 1])
    xs = [int(x) for x in rng.integers(0, m, size=n + 1)]
    acc, text, run = xs[0], [str(xs[0])], []
    for x in xs[1:]:
      op = "+-*"[int(rng.integers(0, 3))]
      acc = (acc + x if op == "+" else acc - x if op == "-" else acc * x) % m
      text.append(f"{op}{x}")
      run.append(str(acc))
    return Example(f"mod{m}:{''.join(text)}", str(acc), ",".join(run))


@register
class Pointer(Task):
  """`ptr:b=a,c=5,a=3;b?` -> 3: follow variable bindings until a digit.

  The queried variable is `hops` lookups from its digit; distractor bindings point at a
  digit or at any earlier variable (possibly on the queried chain), so the bindings form
  a forest and every lookup terminates. Bindings are shuffled. Trace: the bindings used,
  query first: "b=a,a=3".
  """
  name = "pointer"
  max_level = 4
  _HOPS = ((1, 1), (2, 3), (3, 5), (4, 7))
  _DISTRACT = ((1, 1), (2, 4), (3, 7), (4, 10))

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    hops, extra = _between(rng, self._HOPS[level - 1]), _between(rng, self._DISTRACT[level - 1])
    names = _names(rng, hops + 1 + extra)
    bind = {names[0]: str(int(rng.integers(0, 10)))}
    for i in range(1, hops + 1):
      bind[names[i]] = names[i - 1]
    for i in range(hops + 1, len(names)):
      digit = rng.random() < 0.5
      bind[names[i]] = str(int(rng.integers(0, 10))) if digit else names[int(rng.integers(0, i))]
    order = [names[i] for i in rng.permutation(len(names))]
    steps = [f"{names[i]}={bind[names[i]]}" for i in range(hops, -1, -1)]
    prompt = f"ptr:{','.join(f'{v}={bind[v]}' for v in order)};{names[hops]}?"
    return Example(prompt, bind[names[0]], ",".join(steps))


@register
class Reach(Task):
  """Reachability (not path length): `reach:ab,bc,cd;a>d?` -> 1 if a directed path a->d exists.

  Edges `xy` mean x->y (no self-loops, no duplicates). Answers are 1/0 with probability
  1/2 each. From level 2 on, a positive is never a single edge and a negative's source
  always has an out-edge, so neither can be read off the edge list without search. Trace:
  the BFS layers from the source (each layer's new nodes sorted), joined by ',', stopping
  at the layer that contains the target or when the frontier empties.
  """
  name = "reach"
  max_level = 4
  _NODES = ((3, 3), (4, 5), (6, 8), (8, 11))

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    n = _between(rng, self._NODES[level - 1])
    m = _between(rng, (n - 1, n + level - 1))
    names = _names(rng, n)
    want = bool(rng.random() < 0.5)
    all_pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    while True:  # some graphs reach everything (or nothing): redraw until `want` is askable
      edges = [all_pairs[k] for k in rng.choice(len(all_pairs), size=m, replace=False)]
      out = {i: {j for a, j in edges if a == i} for i in range(n)}
      layers = {}  # source -> BFS layers (sets of node ids)
      for s in range(n):
        seen, frontier, layers[s] = {s}, {s}, []
        while frontier:
          layers[s].append(frontier)
          frontier = {j for i in frontier for j in out[i]} - seen
          seen |= frontier
      dist = {(s, t): d for s in range(n) for d, lay in enumerate(layers[s]) for t in lay}
      easy = (lambda s, t: dist[s, t] == 1) if want else (lambda s, t: not out[s])
      asks = [(s, t) for s, t in all_pairs if ((s, t) in dist) == want
              and (level == 1 or not easy(s, t))]
      if asks:
        break
    s, t = asks[int(rng.integers(0, len(asks)))]
    d = dist.get((s, t), len(layers[s]) - 1)
    trace = ",".join("".join(sorted(names[i] for i in lay)) for lay in layers[s][:d + 1])
    text = ",".join(names[a] + names[b] for a, b in edges)
    return Example(f"reach:{text};{names[s]}>{names[t]}?", str(int(want)), trace)


def _bool_tree(rng: np.random.Generator, k: int):
  # k binary operators; any node may be negated once, so "!!" never appears.
  if k == 0:
    node = str(int(rng.integers(0, 2)))
  else:
    left = int(rng.integers(0, k))
    node = ("&|"[int(rng.integers(0, 2))], _bool_tree(rng, left), _bool_tree(rng, k - 1 - left))
  return ("!", node) if rng.random() < 0.2 else node


def _bool_prec(node) -> int:
  return 3 if isinstance(node, str) or node[0] == "!" else 2 if node[0] == "&" else 1


def _bool_show(node) -> str:
  if isinstance(node, str):
    return node
  if node[0] == "!":
    s = _bool_show(node[1])
    return "!" + (f"({s})" if _bool_prec(node[1]) < 3 else s)
  a, b = _bool_show(node[1]), _bool_show(node[2])
  # Minimal parentheses for ! > & > |, left-associative: the text parses back to this tree.
  a = f"({a})" if _bool_prec(node[1]) < _bool_prec(node) else a
  b = f"({b})" if _bool_prec(node[2]) <= _bool_prec(node) else b
  return f"{a}{node[0]}{b}"


def _bool_flat(s: str) -> str:
  # A parenthesis-free formula: '|' splits into '&'-terms, each a run of !-prefixed bits.
  def lit(t):
    return int(t[-1]) ^ (len(t) - 1) % 2
  return str(int(any(all(lit(t) for t in term.split("&")) for term in s.split("|"))))


@register
class Boolean(Task):
  """`bool:!(1&0)|0` -> 1. Literals 0/1, `!` binds tightest, then `&`, then `|`.

  Trace: innermost-first reduction. Each step is `group=value` for the leftmost
  parenthesised group with no parentheses inside (the group then becomes its value), and
  the last step evaluates what is left: "!(1&0)|0" -> "1&0=0,!0|0=1".
  """
  name = "boolean"
  max_level = 4
  _OPS = ((1, 2), (2, 4), (4, 7), (6, 10))

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    s = text = _bool_show(_bool_tree(rng, _between(rng, self._OPS[level - 1])))
    steps = []
    while "(" in s:
      j = s.index(")")
      i = s.rindex("(", 0, j)
      v = _bool_flat(s[i + 1:j])
      steps.append(f"{s[i + 1:j]}={v}")
      s = s[:i] + v + s[j + 1:]
    answer = _bool_flat(s)
    steps.append(f"{s}={answer}")
    return Example(f"bool:{text}", answer, ",".join(steps))


@register
class Eca(Task):
  """`eca:k=2:0110` -> the row after k steps of elementary cellular automaton rule 110.

  The row keeps its width; cells beyond both ends are fixed at 0 (zero boundary) at every
  step. Trace: the k-1 intermediate rows, joined by ',' (empty when k=1).
  """
  name = "eca"
  max_level = 4
  _WIDTH = ((2, 3), (4, 6), (6, 10), (8, 16))
  _STEPS = ((1, 1), (1, 2), (2, 3), (3, 5))

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    w, k = _between(rng, self._WIDTH[level - 1]), _between(rng, self._STEPS[level - 1])
    row = [int(b) for b in rng.integers(0, 2, size=w)]
    start, rows = "".join(map(str, row)), []
    for _ in range(k):
      p = [0] + row + [0]
      row = [(110 >> (4 * p[i] + 2 * p[i + 1] + p[i + 2])) & 1 for i in range(w)]
      rows.append("".join(map(str, row)))
    return Example(f"eca:k={k}:{start}", rows[-1], ",".join(rows[:-1]))


@register
class Stack(Task):
  """`stk:34+d*` -> the final stack, bottom first ("34+d*" -> 7,7 -> "9").

  Opcodes, all arithmetic mod 10: a digit pushes itself; `+` and `*` pop b then a and push
  (a+b)%10, (a*b)%10; `d` duplicates the top; `s` swaps the top two; `p` drops the top.
  Programs are generated valid: no underflow, depth never above a per-level cap, and the
  final stack is non-empty. Trace: the stack after each instruction, bottom first, joined
  by ',' (an empty stack is an empty field); its last field is the answer.
  """
  name = "stack"
  max_level = 4
  syntax = "+*dsp"  # opcodes: what a renamed-syntax probe permutes
  _LEN = ((2, 3), (4, 6), (6, 10), (9, 14))
  _CAP = (3, 4, 5, 5)

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    n, cap = _between(rng, self._LEN[level - 1]), self._CAP[level - 1]
    stack, prog, states = [], [], []
    for i in range(n):
      ops = ["#", "#"] if len(stack) < cap else []  # "#" = push a digit; weighted x2
      ops += ["d"] if 1 <= len(stack) < cap else []
      ops += ["+", "*", "s"] if len(stack) >= 2 else []
      ops += ["p"] if len(stack) >= (2 if i == n - 1 else 1) else []
      op = ops[int(rng.integers(0, len(ops)))]
      if op == "#":
        stack.append(int(rng.integers(0, 10)))
        op = str(stack[-1])
      elif op == "d":
        stack.append(stack[-1])
      elif op == "s":
        stack[-2:] = stack[-2:][::-1]
      elif op == "p":
        stack.pop()
      else:
        b, a = stack.pop(), stack.pop()
        stack.append((a + b if op == "+" else a * b) % 10)
      prog.append(op)
      states.append("".join(map(str, stack)))
    return Example(f"stk:{''.join(prog)}", states[-1], ",".join(states))


def _kdyck_depths(s: str, k: int) -> list[str]:
  # Per bracket type: depth after each of its own symbols; "-" marks an underflow and ends it.
  fields = []
  for o, c in _BRACKETS[:k]:
    depth, out = 0, ""
    for ch in s:
      if ch in (o, c):
        depth += 1 if ch == o else -1
        out += "-" if depth < 0 else str(depth)
        if depth < 0:
          break
    fields.append(out)
  return fields


@register
class KDyck(Task):
  """`kdyck:([)]` -> 1 iff each bracket type is balanced on its own (shuffle of k Dyck words).

  Level l uses the first l of ()[]{}<> and l..3l-1 pairs, each type at least one. Half the
  items are negatives: a positive with two different symbols swapped (keeps every count,
  so counting alone cannot tell) or one symbol replaced by another, redrawn until invalid.
  Trace: per type (in ()[]{}<> order), its depth after each of its symbols, joined by ',';
  "-" marks a close with nothing open. Valid iff every field is empty or ends in 0.
  """
  name = "kdyck"
  max_level = 4

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    k, n = level, _between(rng, (level, 3 * level - 1))
    counts = np.ones(k, int) + rng.multinomial(n - k, [1 / k] * k)
    words = []
    for t, c in enumerate(counts):
      o, cl, w, depth = *_BRACKETS[t], [], 0
      while len(w) < 2 * c:
        opens = (len(w) + depth) // 2 < c  # opens used so far: (len + depth) / 2
        if opens and (depth == 0 or rng.random() < 0.5):
          w.append(o)
          depth += 1
        else:
          w.append(cl)
          depth -= 1
      words.append(w)
    slots = rng.permutation(np.repeat(np.arange(k), 2 * counts))
    pos = [0] * k
    s = []
    for t in slots:
      s.append(words[t][pos[t]])
      pos[t] += 1
    positive = bool(rng.random() < 0.5)
    symbols = "".join(_BRACKETS[:k])
    while not positive:
      bad = list(s)
      i, j = (int(x) for x in rng.choice(len(s), size=2, replace=False))
      if rng.random() < 0.5:
        bad[i], bad[j] = bad[j], bad[i]
      else:
        bad[i] = symbols[int(rng.integers(0, len(symbols)))]
      if not all(f == "" or f[-1] == "0" for f in _kdyck_depths("".join(bad), k)):
        s = bad
        break
    s = "".join(s)
    return Example(f"kdyck:{s}", str(int(positive)), ",".join(_kdyck_depths(s, k)))


_IND_SUB = "abcdef"  # the alphabet `sub` permutes and rev/rot/sub inputs are drawn from


def _ind_apply(kind: str, p, s: str) -> str:
  # p: the constant (add), the shift (rot) or the letter map (sub); unused for rev.
  if kind == "add":
    return "".join(str((int(d) + p) % 10) for d in s)
  if kind == "rot":
    return s[p:] + s[:p]
  return s[::-1] if kind == "rev" else "".join(p[a] for a in s)


def _ind_fits(kinds, pairs, query) -> set:
  """Answers of every rule of the given kinds that fits all pairs; None = undetermined."""
  out = set()
  strings = [x for x, _ in pairs] + [query]
  if "add" in kinds and all(x.isdigit() for x in strings):
    out |= {_ind_apply("add", c, query) for c in range(1, 10)
            if all(_ind_apply("add", c, x) == y for x, y in pairs)}
  if "rev" in kinds and all(x[::-1] == y for x, y in pairs):
    out.add(query[::-1])
  if "rot" in kinds:
    out |= {_ind_apply("rot", r, query) for r in range(1, len(query))
            if all(_ind_apply("rot", r, x) == y for x, y in pairs)}
  if "sub" in kinds and all(set(x + y) <= set(_IND_SUB) for x, y in pairs):
    m = {}
    for x, y in pairs:
      for a, b in zip(x, y):
        m.setdefault(a, set()).add(b)
    if all(len(v) == 1 for v in m.values()) and len(set.union(*m.values())) == len(m):
      # A letter never shown could map to any image still free: count it as undetermined.
      out.add("".join(min(m[a]) for a in query) if set(query) <= set(m) else None)
  return out


@register
class Induct(Task):
  """`ind:12>45,70>03;58>?` -> 81: infer a hidden string rule from examples, apply it.

  Rule kinds (level l draws among the first l): add c (c in 1..9, each digit +c mod 10;
  digit strings only), rev (reverse), rot r (rotate left by r, 1 <= r < length), sub (a
  random permutation of the letters a-f applied to each symbol; a-f strings only). rev and
  rot act on any string. add items use digits, the others letters a-f; all strings in one
  prompt have the same length and are distinct. Items are redrawn until every rule of the
  level's kinds that fits all shown pairs gives the same answer on the query (so the
  examples determine the answer, if not always the rule: rev = rot 1 on length 2). No trace.
  """
  name = "induct"
  max_level = 4
  _KINDS = ("add", "rev", "rot", "sub")
  _LEN = ((1, 1), (2, 3), (3, 4), (3, 5))
  _SHOWN = (2, 2, 3, 4)

  def generate(self, rng: np.random.Generator, level: int) -> Example:
    check_level(self, level)
    kinds = self._KINDS[:level]
    kind = kinds[int(rng.integers(0, level))]
    n, shown = _between(rng, self._LEN[level - 1]), self._SHOWN[level - 1]
    alphabet = string.digits if kind == "add" else _IND_SUB
    while True:
      p = None  # rev has no parameter
      if kind == "add":
        p = int(rng.integers(1, 10))
      elif kind == "rot":
        p = int(rng.integers(1, n))
      elif kind == "sub":
        p = dict(zip(_IND_SUB, (_IND_SUB[i] for i in rng.permutation(len(_IND_SUB)))))
      xs = ["".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))
            for _ in range(shown + 1)]
      pairs, query = [(x, _ind_apply(kind, p, x)) for x in xs[:-1]], xs[-1]
      answer = _ind_apply(kind, p, query)
      if len(set(xs)) == len(xs) and _ind_fits(kinds, pairs, query) == {answer}:
        break
    return Example(f"ind:{','.join(f'{x}>{y}' for x, y in pairs)};{query}>?", answer)
