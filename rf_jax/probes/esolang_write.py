"""Program writing in Brainf*ck and Befunge, judged by running what the model wrote.

The paper's own esolang test (rf_jax/esolang_write.py has the six tasks, their levels,
prompts and reference programs): the model writes a program, the judge runs it on hidden
inputs under step and time limits, and an item's score is the fraction of right outputs;
exact match means all of them (`Item.exact_by_score`), since many programs are right. The
seconds spent interpreting are part of the section, for the evaluator's timed split.
"""
from __future__ import annotations

import zlib

import numpy as np

from rf_jax.esolang_judge import Spelling, Stopwatch, judge, spelling
from rf_jax.esolang_write import MAX_LEVEL, TASKS, Problem, WriteTask, make_problem, prompt
from rf_jax.greedy import EVAL_SEED_OFFSET, Item
from rf_jax.probes.base import Panel, Probe, fmt, mean, register
from rf_jax.tasks.base import Example

METRIC = {"brainfuck": "bf_write", "befunge93": "befunge_write"}


class ProgramScore:
  """An item's scorer: runs the model's program (read back from the vocabulary's spelling)
  on the problem's hidden tests."""

  def __init__(self, task: WriteTask, problem: Problem, spell: Spelling, stopwatch: Stopwatch):
    self.task, self.problem, self.spell, self.stopwatch = task, problem, spell, stopwatch

  def __call__(self, example: Example, output: str) -> float:
    return judge(self.task.language, self.spell.read(output), self.problem.tests,
                 self.task.limits, self.stopwatch).score


def decode_budget(reference: str) -> int:
  """Tokens a model may write: twice the reference program (and its <eos>), rounded up to a
  multiple of 64 so that few decoding lengths need compiling."""
  return -(-(2 * len(reference) + 1) // 64) * 64


def write_items(seed: int, n_per: int, spell: Spelling, stopwatch: Stopwatch,
                levels=range(1, MAX_LEVEL + 1)) -> list[Item]:
  """`n_per` problems of every task at every level, keyed (task, level)."""
  items = []
  for task in TASKS.values():
    for level in levels:
      for i in range(n_per):
        rng = np.random.default_rng([seed + EVAL_SEED_OFFSET, i, level,
                                     zlib.crc32(task.name.encode())])
        problem = make_problem(task, rng, level)
        answer = spell.write(problem.reference)
        items.append(Item((task.name, level), Example(prompt(task, problem, spell), answer),
                          ProgramScore(task, problem, spell, stopwatch),
                          max_new=decode_budget(answer), exact_by_score=True))
  return items


@register("esolang_write")
class EsolangWrite(Probe):
  metrics = tuple(METRIC.values())

  def __init__(self):
    self.stopwatch = Stopwatch()

  def items(self, ctx):
    return write_items(ctx.seed, ctx.n_per, spelling(ctx.run.vocab), self.stopwatch)

  def summarize(self, ctx, results):
    tasks = {}
    for name, task in TASKS.items():
      levels = {str(lvl): r for (n, lvl), r in sorted(results.items()) if n == name}
      tasks[name] = {"language": task.language, "levels": levels,
                     "exact": mean(r["exact"] for r in levels.values())}
    section = {"tasks": tasks, "interpret_seconds": self.stopwatch.seconds,
               "runs": self.stopwatch.runs}
    for language, metric in METRIC.items():
      section[metric] = mean(r["exact"] for t in tasks.values() if t["language"] == language
                             for r in t["levels"].values())
    return section

  def headline(self, section):
    return {m: section[m] for m in self.metrics}

  def table(self, section):
    lines = []
    for name, t in section["tasks"].items():
      by_level = " ".join(f"L{lvl}:{r['exact']:.2f}({r['score']:.2f})"
                          for lvl, r in t["levels"].items())
      lines.append(f"write {name:<14} {by_level}   mean {fmt(t['exact']).strip()}")
    lines.append("program writing, exact (fraction of hidden tests passed): " + " ".join(
        f"{m} {fmt(section[m]).strip()}" for m in self.metrics))
    return lines

  def panels(self, section):
    out = []
    for name, t in section["tasks"].items():
      lv = sorted(t["levels"], key=int)
      out.append(Panel(f"write {name}", [int(lvl) for lvl in lv],
                       [t["levels"][lvl]["exact"] for lvl in lv]))
    return out
