"""Befunge: a two-dimensional esoteric language, for evaluation only, never a training task.

Like Brainf*ck (rf_jax/esolang.py) it is a language a reasoning-first model never trains on:
the probes ask a model to predict what a program prints (rf_jax/probes/befunge.py) and to
write programs that are judged by running them (rf_jax/probes/esolang_write.py). The
semantics are fixed here so that an expected output never depends on an interpreter's taste.

Befunge-93 (`dialect="93"`, the default):
- The playfield is 80 x 25 cells and a torus: leaving one edge enters at the opposite one.
  The program's lines fill it from the top-left; the other cells are spaces. A program with
  more than 25 lines or a line longer than 80 does not run (status "error").
- Cells hold integers (a program's characters are their codes); `p` stores any integer and
  `g` reads it back. The instruction pointer (IP) starts at (0, 0) moving right.
- The stack holds unbounded integers; popping an empty stack gives 0.
- `0`-`9` push the digit. `+ - * / %` pop b, then a, and push a+b, a-b, a*b, a/b, a%b;
  division truncates toward zero and the remainder takes the sign of a (C's rules);
  dividing by zero ends the run (status "error"). `!` pushes 1 if the popped value is 0,
  else 0. `` ` `` pops b, a and pushes 1 if a > b, else 0.
- `> < ^ v` set the direction; `?` picks one of the four at random from a generator seeded
  by `seed`, so a run is reproducible. `_` pops and goes right if 0, else left; `|` pops and
  goes down if 0, else up. `#` skips the next cell. `@` ends the run (status "halted").
- `"` toggles string mode: each cell passed in it pushes its code (spaces included), until
  the next `"`. `:` duplicates the top (an empty stack gives two zeros), `\\` swaps the top
  two, `$` pops and discards.
- `.` pops and prints the integer in decimal followed by one space; `,` pops and prints the
  byte value % 256.
- `g` pops y, then x, and pushes the cell (x, y); `p` pops y, x, then v and stores v at
  (x, y). Either outside the 80 x 25 playfield ends the run (status "error").
- `&` reads an integer: it skips input bytes up to the first digit (or a `-` right before
  one) and reads the digits that follow. `~` reads one byte. The end-of-input rule: either
  one at the end of the input pushes -1.
- A space does nothing. Any other character is a bad instruction: reaching one ends the run
  (status "error", naming it and where).
- Every cell the IP enters counts as a step, spaces included. After `max_steps` steps, or
  `time_limit_s` seconds, a run that has not ended stops with status "step_limit" or
  "time_limit" and the output so far. No program can hang the caller or raise.

Befunge-98 (`dialect="98"`, for the EsoLang-Bench problems, which are written in it) differs
where simple input/output programs notice it:
- The playfield is the program's bounding box (no 80 x 25 limit) and wraps around it; `p`
  beyond the box grows it, `g` outside it reads a space (32).
- `a`-`f` push 10-15; `'` pushes the next cell's value and skips it; `s` pops into the next
  cell and skips it; `;` jumps to the next `;`; `[` / `]` turn left / right; `r` reverses;
  `j` pops n and jumps n cells; `k` pops n and runs the next instruction n times (n = 0
  skips it); `n` clears the stack; `w` pops b, a and turns left if a < b, right if a > b;
  `x` pops dy, dx as the new direction; `z` does nothing; `q` pops an exit code and ends.
- Dividing by zero gives 0; `&` and `~` at the end of the input reverse the IP (so does `&`
  with no digits left). In string mode a run of spaces pushes one space.
- Any instruction it does not know reverses the IP (the standard's rule): upper-case letters
  (fingerprints, none loaded), `(` and `)` (after popping their operands), and the optional
  `i o = t h l m`.
- Not implemented, and reported as status "unsupported" naming the instruction, never run
  wrongly: the stack stack (`{ } u`), `y` (system information), and `x` with a non-cardinal
  direction, `p` at negative coordinates or so far out that the playfield would pass
  MAX_CELLS cells.
"""
from __future__ import annotations

import dataclasses
import random
import time
from typing import Callable

WIDTH, HEIGHT = 80, 25
MAX_CELLS = 1 << 16  # Befunge-98: the largest playfield `p` may grow
DIALECTS = ("93", "98")
STATUSES = ("halted", "step_limit", "time_limit", "error", "unsupported")
_DIRS = ((1, 0), (-1, 0), (0, -1), (0, 1))  # right, left, up, down: `?` picks one


@dataclasses.dataclass(frozen=True)
class BefungeResult:
  output: bytes
  steps: int
  status: str        # one of STATUSES
  message: str = ""  # for error / unsupported / a limit: what happened, and where

  @property
  def halted(self) -> bool:
    return self.status == "halted"


class _Stop(Exception):
  """Ends a run: an instruction raises it with the run's status."""

  def __init__(self, status: str, message: str = ""):
    super().__init__(message)
    self.status, self.message = status, message


class _Machine:
  """The state of one run: playfield, IP, stack, input and output."""

  def __init__(self, grid: list[list[int]], input_bytes: bytes, seed: int, dialect: str):
    self.grid, self.dialect = grid, dialect
    self.h, self.w = len(grid), len(grid[0])
    self.x = self.y = 0
    self.dx, self.dy = 1, 0
    self.stack: list[int] = []
    self.out = bytearray()
    self.inp, self.read = input_bytes, 0
    self.rng = random.Random(seed)
    self.string_mode = False
    self.steps = 0
    self.max_steps = 0

  def pop(self) -> int:
    return self.stack.pop() if self.stack else 0

  def push(self, v: int) -> None:
    self.stack.append(v)

  def move(self) -> None:
    self.x = (self.x + self.dx) % self.w
    self.y = (self.y + self.dy) % self.h

  def where(self) -> str:
    return f"at ({self.x},{self.y})"

  def inside(self, x: int, y: int) -> bool:
    return 0 <= x < self.w and 0 <= y < self.h

  def reflect(self) -> None:
    self.dx, self.dy = -self.dx, -self.dy

  def end_of_input(self) -> None:
    """What `&` / `~` do with nothing left to read: push -1 (93) or reverse (98)."""
    if self.dialect == "93":
      self.push(-1)
    else:
      self.reflect()


def _parse(program: str, dialect: str) -> list[list[int]] | str:
  """The playfield of `program`, or a message saying why it cannot run."""
  lines = program.replace("\r\n", "\n").split("\n")
  while len(lines) > 1 and not lines[-1]:
    lines.pop()
  if dialect == "93":
    if len(lines) > HEIGHT or max(len(s) for s in lines) > WIDTH:
      return (f"program too large: Befunge-93's playfield is {WIDTH}x{HEIGHT}, this one has "
              f"{len(lines)} lines, the longest {max(len(s) for s in lines)} cells")
    w, h = WIDTH, HEIGHT
  else:
    w, h = max(1, max(len(s) for s in lines)), len(lines)
  grid = [[32] * w for _ in range(h)]
  for y, line in enumerate(lines):
    for x, ch in enumerate(line):
      grid[y][x] = ord(ch)
  return grid


# Instructions common to both dialects.

def _arith(op: Callable[[int, int], int]):
  def run(m: _Machine) -> None:
    b, a = m.pop(), m.pop()
    m.push(op(a, b))
  return run


def _divide(remainder: bool):
  def run(m: _Machine) -> None:
    b, a = m.pop(), m.pop()
    if b == 0:
      if m.dialect == "93":
        raise _Stop("error", f"{'modulo' if remainder else 'division'} by zero {m.where()}")
      m.push(0)
      return
    q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # truncated toward zero
    m.push(a - q * b if remainder else q)
  return run


def _go(dx: int, dy: int):
  def run(m: _Machine) -> None:
    m.dx, m.dy = dx, dy
  return run


def _push(v: int):
  return lambda m: m.push(v)


def _random(m: _Machine) -> None:
  m.dx, m.dy = _DIRS[m.rng.randrange(4)]


def _branch(vertical: bool):
  def run(m: _Machine) -> None:
    zero = m.pop() == 0
    if vertical:
      m.dx, m.dy = 0, (1 if zero else -1)
    else:
      m.dx, m.dy = (1 if zero else -1), 0
  return run


def _dup(m: _Machine) -> None:
  v = m.pop()
  m.stack += [v, v]


def _swap(m: _Machine) -> None:
  b, a = m.pop(), m.pop()
  m.stack += [b, a]


def _print_int(m: _Machine) -> None:
  m.out += f"{m.pop()} ".encode()


def _print_char(m: _Machine) -> None:
  m.out.append(m.pop() % 256)


def _get(m: _Machine) -> None:
  y, x = m.pop(), m.pop()
  if m.inside(x, y):
    m.push(m.grid[y][x])
  elif m.dialect == "93":
    raise _Stop("error", f"g at ({x},{y}) outside the {WIDTH}x{HEIGHT} playfield {m.where()}")
  else:
    m.push(32)


def _put(m: _Machine) -> None:
  y, x, v = m.pop(), m.pop(), m.pop()
  if not m.inside(x, y):
    if m.dialect == "93":
      raise _Stop("error", f"p at ({x},{y}) outside the {WIDTH}x{HEIGHT} playfield {m.where()}")
    if x < 0 or y < 0:
      raise _Stop("unsupported", f"unsupported: p at negative coordinates ({x},{y})")
    if max(m.w, x + 1) * max(m.h, y + 1) > MAX_CELLS:
      raise _Stop("unsupported", f"unsupported: p at ({x},{y}), far outside the program "
                  f"(a playfield over {MAX_CELLS} cells)")
    _grow(m, x + 1, y + 1)
  m.grid[y][x] = v


def _grow(m: _Machine, w: int, h: int) -> None:
  """Befunge-98: the playfield's box grows to include (w - 1, h - 1)."""
  m.w, m.h = max(m.w, w), max(m.h, h)
  for row in m.grid:
    row.extend([32] * (m.w - len(row)))
  m.grid.extend([[32] * m.w for _ in range(m.h - len(m.grid))])


def _read_int(m: _Machine) -> None:
  data, i = m.inp, m.read
  while i < len(data) and not (48 <= data[i] <= 57 or
                               (data[i] == 45 and i + 1 < len(data) and 48 <= data[i + 1] <= 57)):
    i += 1
  if i == len(data):
    m.read = i
    m.end_of_input()
    return
  start = i + (data[i] == 45)
  j = start
  while j < len(data) and 48 <= data[j] <= 57:
    j += 1
  m.read = j
  m.push(int(data[i:j]))


def _read_char(m: _Machine) -> None:
  if m.read < len(m.inp):
    m.push(m.inp[m.read])
    m.read += 1
  else:
    m.end_of_input()


def _end(m: _Machine) -> None:
  raise _Stop("halted")


def _bridge(m: _Machine) -> None:
  m.move()


def _string(m: _Machine) -> None:
  m.string_mode = not m.string_mode


def _common() -> dict[int, Callable[[_Machine], None]]:
  ops = {ord(str(d)): _push(d) for d in range(10)}
  ops.update({
      ord("+"): _arith(lambda a, b: a + b), ord("-"): _arith(lambda a, b: a - b),
      ord("*"): _arith(lambda a, b: a * b), ord("/"): _divide(False), ord("%"): _divide(True),
      ord("!"): lambda m: m.push(int(m.pop() == 0)), ord("`"): _arith(lambda a, b: int(a > b)),
      ord(">"): _go(1, 0), ord("<"): _go(-1, 0), ord("^"): _go(0, -1), ord("v"): _go(0, 1),
      ord("?"): _random, ord("_"): _branch(False), ord("|"): _branch(True),
      ord('"'): _string, ord(":"): _dup, ord("\\"): _swap, ord("$"): lambda m: m.pop(),
      ord("."): _print_int, ord(","): _print_char, ord("#"): _bridge, ord("g"): _get,
      ord("p"): _put, ord("&"): _read_int, ord("~"): _read_char, ord("@"): _end,
      ord(" "): lambda m: None,
  })
  return ops


# Befunge-98's additions.

def _fetch(m: _Machine) -> None:
  m.move()
  m.push(m.grid[m.y][m.x])


def _store(m: _Machine) -> None:
  m.move()
  m.grid[m.y][m.x] = m.pop()


def _jump_over(m: _Machine) -> None:
  for _ in range(max(m.w, m.h)):  # the path along a row or column repeats after w or h cells
    m.move()
    if m.grid[m.y][m.x] == ord(";"):
      return


def _turn(left: bool):
  def run(m: _Machine) -> None:
    m.dx, m.dy = (m.dy, -m.dx) if left else (-m.dy, m.dx)
  return run


def _jump(m: _Machine) -> None:
  n = m.pop()
  m.x, m.y = (m.x + m.dx * n) % m.w, (m.y + m.dy * n) % m.h


def _compare(m: _Machine) -> None:
  b, a = m.pop(), m.pop()
  if a != b:
    _turn(a < b)(m)


def _delta(m: _Machine) -> None:
  dy, dx = m.pop(), m.pop()
  if abs(dx) + abs(dy) != 1:
    raise _Stop("unsupported", f"unsupported: x with the non-cardinal delta ({dx},{dy})")
  m.dx, m.dy = dx, dy


def _quit(m: _Machine) -> None:
  m.pop()
  raise _Stop("halted")


def _fingerprint(m: _Machine) -> None:
  """`(` / `)` with no fingerprints loaded: pop the count and the id cells, then reverse."""
  n = m.pop()
  for _ in range(min(max(n, 0), len(m.stack))):
    m.pop()
  m.reflect()


def _unsupported(ch: str):
  def run(m: _Machine) -> None:
    raise _Stop("unsupported", f"unsupported: {ch} {m.where()}")
  return run


def _iterate(m: _Machine) -> None:
  """`k`: runs the next instruction on the path n times from here, then moves past it."""
  n = m.pop()
  x, y = m.x, m.y
  for _ in range(max(m.w, m.h)):
    x, y = (x + m.dx) % m.w, (y + m.dy) % m.h
    if m.grid[y][x] != 32:
      break
  if n <= 0:
    m.x, m.y = x, y
    return
  op = _TABLES["98"].get(m.grid[y][x], _reflect)
  heading = (m.dx, m.dy)
  for _ in range(n):
    if m.steps >= m.max_steps:
      raise _Stop("step_limit", f"stopped after {m.max_steps} steps")
    m.steps += 1
    op(m)
  if (m.dx, m.dy) == heading:
    m.x, m.y = x, y


def _reflect(m: _Machine) -> None:
  m.reflect()


def _b98() -> dict[int, Callable[[_Machine], None]]:
  ops = _common()
  ops.update({ord(c): _push(10 + i) for i, c in enumerate("abcdef")})
  ops.update({
      ord("'"): _fetch, ord("s"): _store, ord(";"): _jump_over, ord("["): _turn(True),
      ord("]"): _turn(False), ord("r"): _reflect, ord("j"): _jump, ord("k"): _iterate,
      ord("n"): lambda m: m.stack.clear(), ord("w"): _compare, ord("x"): _delta,
      ord("z"): lambda m: None, ord("q"): _quit, ord("("): _fingerprint,
      ord(")"): _fingerprint,
  })
  ops.update({ord(c): _unsupported(c) for c in "{}uy"})
  return ops


_TABLES = {"93": _common(), "98": _b98()}


def _string_cell(m: _Machine, c: int) -> None:
  m.push(c)
  if m.dialect == "98" and c == 32:  # a run of spaces is one space in Befunge-98
    for _ in range(max(m.w, m.h)):
      nx, ny = (m.x + m.dx) % m.w, (m.y + m.dy) % m.h
      if m.grid[ny][nx] != 32:
        break
      m.x, m.y = nx, ny


def _bad(m: _Machine, c: int) -> None:
  if m.dialect == "98":
    m.reflect()
    return
  shown = repr(chr(c)) if 0 <= c < 0x110000 else str(c)
  raise _Stop("error", f"bad instruction {shown} {m.where()}")


def _loop(m: _Machine, time_limit_s: float) -> None:
  """Runs until an instruction or a limit raises _Stop."""
  table = _TABLES[m.dialect]
  deadline = time.perf_counter() + time_limit_s if time_limit_s > 0 else None
  while True:
    if m.steps >= m.max_steps:
      raise _Stop("step_limit", f"stopped after {m.max_steps} steps")
    if deadline is not None and not m.steps & 1023 and time.perf_counter() > deadline:
      raise _Stop("time_limit", f"stopped after {time_limit_s}s ({m.steps} steps)")
    m.steps += 1
    c = m.grid[m.y][m.x]
    if m.string_mode and c != 34:
      _string_cell(m, c)
    else:
      op = table.get(c)
      if op is None:
        _bad(m, c)
      else:
        op(m)
    m.move()


def run_befunge(program: str, input_bytes: bytes = b"", max_steps: int = 100_000,
                seed: int = 0, dialect: str = "93", time_limit_s: float = 0.0) -> BefungeResult:
  """Runs `program` under the semantics in the module docstring; never raises for a program."""
  if dialect not in DIALECTS:
    raise ValueError(f"Befunge dialect must be one of {DIALECTS}, got {dialect!r}")
  if max_steps < 0:
    raise ValueError(f"max_steps must be >= 0, got {max_steps}")
  grid = _parse(program, dialect)
  if isinstance(grid, str):
    return BefungeResult(b"", 0, "error", grid)
  m = _Machine(grid, bytes(input_bytes), seed, dialect)
  m.max_steps = max_steps
  try:
    _loop(m, time_limit_s)
  except _Stop as stop:
    return BefungeResult(bytes(m.out), m.steps, stop.status, stop.message)
  raise AssertionError("unreachable: the loop only ends by _Stop")


# The language as a prompt describes it: one line each, characters the interpreter reads.
# Probes pass it through rf_jax.esolang_judge.spelling for vocabularies without `"`, `\`, `.
DOC_93 = ("befunge: 80x25 grid of cells that wraps,ip starts top left going right. stack of "
          "ints,pop of empty gives 0. 0-9 push digit. + - * / % pop b,a push a op b. ! pop,"
          "push 1 if 0 else 0. ` pop b,a push 1 if a>b else 0. > < ^ v go right,left,up,down. "
          "? go a random way. _ pop,go right if 0 else left. | pop,go down if 0 else up. "
          "\" string mode:push each char code till next \". : dup. \\ swap. $ pop. . pop,print "
          "int and a space. , pop,print char. # skip next cell. g pop y,x,push cell. p pop "
          "y,x,v,set cell. & read int. ~ read char. & and ~ give -1 at end of input. @ end")
DOC_98 = (DOC_93.replace("befunge: 80x25 grid", "befunge98: grid").replace(
    " & and ~ give -1 at end of input.", "") +
    ". 98 adds: a-f push 10-15. ' push next cell and skip it. s pop into next cell. ; skip to "
    "next ;. [ ] turn left,right. r reverse. j pop n,jump n cells. k pop n,do next n times. "
    "n clear stack. w pop b,a,turn left if a<b,right if a>b. x pop dy,dx,go that way. z "
    "nothing. q end. unknown chars, & and ~ at end of input reverse. x/0 and x%0 give 0")
