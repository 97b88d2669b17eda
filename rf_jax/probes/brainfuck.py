"""Brainf*ck output prediction: programs in a language the model never trained on.

Each prompt carries the language's one-line description (`BF_DOC`) and a generated program;
the answer is what it prints. The interpreter and the program generator live in
rf_jax/esolang.py.
"""
from __future__ import annotations

import numpy as np

from rf_jax.esolang import BF_DOC, MAX_LEVEL, bf_example
from rf_jax.greedy import EVAL_SEED_OFFSET, Item
from rf_jax.probes.base import Panel, Probe, fmt, mean, register
from rf_jax.tasks.base import Example, positional_credit


def described_example(rng: np.random.Generator, level: int) -> Example:
  """A generated program with the language's description on the line before it."""
  ex = bf_example(rng, level)
  return Example(f"{BF_DOC}\n{ex.prompt}", ex.answer, ex.trace)


def _credit(example: Example, output: str) -> float:
  return positional_credit(example.answer, output)


@register("brainfuck")
class Brainfuck(Probe):
  metrics = ("brainfuck",)

  def items(self, ctx):
    return [Item((level,), described_example(
        np.random.default_rng([ctx.seed + EVAL_SEED_OFFSET, i, level, 11]), level), _credit)
            for level in range(1, MAX_LEVEL + 1) for i in range(ctx.n_per)]

  def summarize(self, ctx, results):
    levels = {str(lvl): r for (lvl,), r in sorted(results.items())}
    return {"levels": levels, "mean": mean(r["exact"] for r in levels.values())}

  def headline(self, section):
    return {"brainfuck": section["mean"]}

  def table(self, section):
    return ["brainfuck output prediction: " +
            " ".join(f"L{lvl}:{r['exact']:.2f}" for lvl, r in section["levels"].items()) +
            f"   mean {fmt(section['mean']).strip()}"]

  def panels(self, section):
    lv = sorted(section["levels"], key=int)
    return [Panel("brainfuck", [int(lvl) for lvl in lv],
                  [section["levels"][lvl]["exact"] for lvl in lv])]
