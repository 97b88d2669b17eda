"""The same problems in an unfamiliar syntax: does a family's skill survive a renaming?

`renamed(task, example, rng)` is the "same algorithm, unfamiliar language" test built from
our own tasks: the task tag becomes a random upper-case word and each syntax symbol
(operators, brackets; a task may list its own in `Task.syntax`) is swapped for an unused
symbol. A one-line description of the new syntax is prepended, e.g.

    QXV is add, # is +
    QXV:12#35            ->  47

The probe asks every symbolic family at the lowest training level; English (verbal_*)
prompts have no symbolic syntax to rename.
"""
from __future__ import annotations

import string

import numpy as np

from rf_jax import tasks as tasks_lib
from rf_jax.greedy import EVAL_SEED_OFFSET, Item
from rf_jax.probes.base import FamilyProbe, register
from rf_jax.tasks import Example, Task
from rf_jax.tasks.bridging import VERBAL_PREFIX
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


def _families(ctx) -> list[str]:
  return [n for n in ctx.families if not n.startswith(VERBAL_PREFIX)]


@register("renamed")
class Renamed(FamilyProbe):
  metrics = ("renamed",)
  label = "renamed syntax (level {level})"
  panel_title = "renamed syntax"

  def applies(self, ctx):
    return bool(_families(ctx))

  def items(self, ctx):
    level, seed = ctx.levels[0], ctx.seed
    items = []
    for name in _families(ctx):
      task = tasks_lib.get(name)
      for i in range(ctx.n_per):
        ex = tasks_lib.make_example(task, seed + EVAL_SEED_OFFSET, i, level)
        rng = np.random.default_rng([seed, i, level, 7])
        items.append(Item((name,), renamed(task, ex, rng), task.score,
                          exact_by_score=task.many_answers))
    return items

  def summarize(self, ctx, results):
    return self.family_section(ctx.levels[0], {name: results[(name,)]["exact"]
                                               for name in _families(ctx)})
