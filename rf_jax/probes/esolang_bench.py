"""A published benchmark's problems: EsoLang-Bench's Brainfuck and Befunge-98 subsets.

Applies when the evaluator gets a file (`python -m rf_jax.evaluate --workdir=D
--esolang_bench=FILE`; rf_jax/esolang_bench.py reads it). The model writes one program per
problem and language, judged on every test case by the same runner as `esolang_write`.
A problem is reported by name, not scored, when it cannot be judged fairly: its prompt has a
character the run's vocabulary lacks, or the program met an instruction the interpreter does
not implement (`unsupported: y`). The section lists those per language; `exact` and `score`
are over the problems that were scored. It has no headline metric: a run's headline numbers
(comparisons, experiment tables) must exist for every run, and this one needs a user's file.
"""
from __future__ import annotations

from rf_jax.esolang_bench import BUDGET, LIMITS, BenchProblem, load, prompt
from rf_jax.esolang_judge import Spelling, Stopwatch, encodable, judge, spelling
from rf_jax.greedy import Item
from rf_jax.probes.base import Panel, Probe, fmt, mean, register
from rf_jax.tasks.base import Example

OPTION = "esolang_bench"  # the Context option holding the file's path


class BenchScore:
  """Judges one problem's program; notes an unsupported instruction instead of a score."""

  def __init__(self, language: str, problem: BenchProblem, spell: Spelling,
               stopwatch: Stopwatch, unsupported: dict):
    self.language, self.problem, self.spell = language, problem, spell
    self.stopwatch, self.unsupported = stopwatch, unsupported

  def __call__(self, example: Example, output: str) -> float:
    j = judge(self.language, self.spell.read(output), self.problem.tests, LIMITS,
              self.stopwatch)
    if j.unsupported:
      self.unsupported[(self.language, self.problem.id)] = j.unsupported
    return j.score


def _missing(vocab, text: str) -> str:
  """The first character of `text` the vocabulary cannot encode, or ''."""
  return next((c for c in dict.fromkeys(text) if not encodable(vocab, c)), "")


@register("esolang_bench")
class EsolangBench(Probe):
  metrics = ()  # see the module docstring

  def __init__(self):
    self.stopwatch = Stopwatch()
    self.unsupported: dict[tuple[str, str], str] = {}
    self.problems: list[BenchProblem] = []
    self.languages: tuple[str, ...] = ()

  def applies(self, ctx):
    return bool(ctx.options.get(OPTION))

  def items(self, ctx):
    self.problems, self.languages = load(ctx.options[OPTION])
    spell, vocab = spelling(ctx.run.vocab), ctx.run.vocab
    items = []
    for language in self.languages:
      for p in self.problems:
        text = prompt(p, language, spell)
        bad = _missing(vocab, text)
        if bad:
          self.unsupported[(language, p.id)] = (
              f"unsupported: the prompt's character {bad!r} is not in the run's vocabulary")
          continue
        items.append(Item((language, p.id), Example(text, ""),
                          BenchScore(language, p, spell, self.stopwatch, self.unsupported),
                          max_new=BUDGET, exact_by_score=True))
    return items

  def _language(self, language: str, results) -> dict:
    problems, skipped = {}, {}
    for p in self.problems:
      note = self.unsupported.get((language, p.id))
      if note:
        skipped[p.id] = note
        continue
      r = results[(language, p.id)]
      problems[p.id] = {"title": p.title, "difficulty": p.difficulty, "exact": r["exact"],
                        "score": r["score"]}
    tiers = dict.fromkeys(p["difficulty"] for p in problems.values())
    return {"problems": problems, "unsupported": skipped, "scored": len(problems),
            "solved": int(sum(p["exact"] for p in problems.values())),
            "exact": mean(p["exact"] for p in problems.values()),
            "score": mean(p["score"] for p in problems.values()),
            "by_difficulty": {t: mean(p["exact"] for p in problems.values()
                                      if p["difficulty"] == t) for t in tiers}}

  def summarize(self, ctx, results):
    languages = {lang: self._language(lang, results) for lang in self.languages}
    return {"file": ctx.options[OPTION], "languages": languages,
            "exact": mean(p["exact"] for s in languages.values()
                          for p in s["problems"].values()),
            "interpret_seconds": self.stopwatch.seconds, "runs": self.stopwatch.runs}

  def table(self, section):
    lines = []
    for lang, s in section["languages"].items():
      tiers = " ".join(f"{t}:{fmt(e).strip()}" for t, e in s["by_difficulty"].items())
      lines.append(f"esolang-bench {lang}: solved {s['solved']}/{s['scored']} scored, tests "
                   f"passed {fmt(s['score']).strip()}; {tiers}")
      for pid, note in s["unsupported"].items():
        lines.append(f"  {pid}: {note}")
    return lines

  def panels(self, section):
    return [Panel(f"esolang-bench {lang}", list(s["by_difficulty"]),
                  list(s["by_difficulty"].values()), xlabel="difficulty")
            for lang, s in section["languages"].items() if s["by_difficulty"]]
