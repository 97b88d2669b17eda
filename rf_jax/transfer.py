"""Transfer probes: the same problems in an unfamiliar syntax, and Brainf*ck programs.

`renamed(example, rng)` is the paper's "same algorithm, unfamiliar language" test built from
our own tasks: the task tag becomes a random upper-case word and each syntax symbol
(operators, brackets; a task may list its own in `Task.syntax`) is swapped for an unused
symbol. A one-line description of the new syntax is prepended, e.g.

    QXV is add, # is +
    QXV:12#35            ->  47

`esolang(rng, level)` asks for the output of a generated Brainf*ck program, with the
language described in the prompt (rf_jax/esolang.py).
"""
from __future__ import annotations

import string

import numpy as np

from rf_jax.esolang import BF_DOC, bf_example
from rf_jax.tasks import Example, Task
from rf_jax.vocab import OPERATORS

# Symbols a renaming may map to: punctuation that no built-in prompt uses structurally.
_TARGETS = "#@$&^~_'%!?|;="
_KEEP = set(" \n:" + string.ascii_letters + string.digits)


def syntax_of(task: Task, ex: Example) -> list[str]:
  declared = getattr(task, "syntax", None)
  if declared is not None:
    return [c for c in declared if c in ex.prompt]
  body = ex.prompt.split(":", 1)[-1]
  return sorted({c for c in body if c in OPERATORS and c not in _KEEP})


def renamed(task: Task, ex: Example, rng: np.random.Generator) -> Example:
  tag, sep, body = ex.prompt.partition(":")
  new_tag = "".join(rng.choice(list(string.ascii_uppercase), size=3))
  used = set(ex.prompt + ex.answer)
  pool = [c for c in _TARGETS + string.ascii_uppercase if c not in used and c not in new_tag]
  syms = syntax_of(task, ex)
  targets = list(rng.permutation(pool)[:len(syms)])
  mapping = dict(zip(syms, targets))
  swap = lambda s: "".join(mapping.get(c, c) for c in s)
  doc = ", ".join([f"{new_tag} is {tag}"] + [f"{n} is {o}" for o, n in mapping.items()])
  prompt = f"{doc}\n{new_tag}{sep}{swap(body)}" if sep else f"{doc}\n{swap(ex.prompt)}"
  return Example(prompt, swap(ex.answer), swap(ex.trace))


def esolang(rng: np.random.Generator, level: int) -> Example:
  ex = bf_example(rng, level)
  return Example(f"{BF_DOC}\n{ex.prompt}", ex.answer, ex.trace)
