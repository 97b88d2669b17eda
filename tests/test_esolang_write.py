"""Program writing: the six tasks of the paper judged by running what was written (each
reference passes its own probe, wrong programs fail), the judge's limits and spellings, and
the rule that the esolangs are never trained on."""
from __future__ import annotations

import ast
import pathlib
import time

import numpy as np
import pytest

from rf_jax import config as config_lib
from rf_jax import probes, tasks
from rf_jax.data import inputs
from rf_jax.errors import ConfigError
from rf_jax.esolang_judge import Limits, Stopwatch, judge, outputs_match, run_program, spelling
from rf_jax.esolang_write import (BF_SORT, EXAMPLES, MAX_LEVEL, N_TESTS, TASKS, make_problem,
                                  prompt)
from rf_jax.experiments import pipeline, thesis
from rf_jax.greedy import score_outputs
from rf_jax.probes.esolang_write import decode_budget, write_items
from rf_jax.vocab import phase1_vocab, text_vocab

from helpers import ROOT
from test_probes import context

LEVELS = range(1, MAX_LEVEL + 1)
ESOLANG_PROBES = ("brainfuck", "befunge", "esolang_write", "esolang_bench")


def _problems(name, level, n=20, seed=0):
  return [make_problem(TASKS[name], np.random.default_rng([seed, i, level]), level)
          for i in range(n)]


# Every task at every level: the reference passes, wrong programs do not.

# A near miss of each task's reference, wrong on every problem: one character off, the first
# number wrong, the product doubled, one letter short.
NEAR_MISS = {
    "bf_copy": lambda ref: ",[+.,]",
    "bf_print": lambda ref: ref + ".",
    "bf_sort": lambda ref: ref.replace("<-]>>[", "<-]>+>[", 1),
    "befunge_print": lambda ref: ref.replace(",@", "@"),
    "befunge_fib": lambda ref: ref.replace("&019p", "&119p", 1),
    "befunge_fact": lambda ref: ref.replace("&19p1>", "&19p2>", 1),
}


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("level", LEVELS)
def test_reference_passes_its_own_probe_and_wrong_programs_fail(name, level):
  items = [it for it in write_items(0, 6, spelling(phase1_vocab()), Stopwatch())
           if it.key == (name, level)]
  assert len(items) == 6
  for it in items:
    reference = it.example.answer
    assert it.score(it.example, reference) == 1.0, it.example
    wrong = ["", "@", "+[]", NEAR_MISS[name](reference)]
    assert wrong[-1] != reference
    scores = [it.score(it.example, w) for w in wrong]
    assert all(s == 0.0 for s in scores), (wrong, scores)
  # Through the evaluator's scoring: the references are exact, a wrong program is not.
  right = score_outputs(items, [it.example.answer for it in items])
  assert right[(name, level)] == {"exact": 1.0, "score": 1.0, "n": 6}
  bad = score_outputs(items, [NEAR_MISS[name](it.example.answer) for it in items])
  assert bad[(name, level)] == {"exact": 0.0, "score": 0.0, "n": 6}


def test_another_right_program_is_exact_and_partial_credit_counts_tests():
  copy = _problems("bf_copy", 2, n=1)[0]
  assert judge("brainfuck", "+++[-],[.,]", copy.tests).exact  # not the reference's text
  j = judge("brainfuck", ",.", (("a", "a"), ("bc", "bc"), ("d", "d"), ("ef", "ef")))
  assert (j.passed, j.total, j.score, j.exact) == (2, 4, 0.5, False)


def test_problems_get_harder_with_the_level_and_are_deterministic():
  for name in TASKS:
    sizes = [np.mean([sum(len(i) + len(o) for i, o in p.tests) for p in _problems(name, lvl)])
             for lvl in LEVELS]
    assert all(a < b for a, b in zip(sizes, sizes[1:])), (name, sizes)
    assert _problems(name, 3) == _problems(name, 3)
    assert _problems(name, 3) != _problems(name, 3, seed=1)
    for p in _problems(name, 2):
      assert len(p.tests) == (1 if "print" in name else N_TESTS)
  with pytest.raises(ValueError, match="levels are 1..4"):
    make_problem(TASKS["bf_copy"], np.random.default_rng(0), 5)


def test_prompts_hold_the_language_examples_and_task_in_every_vocabulary():
  for vocab in (phase1_vocab(), text_vocab("bytes")):
    spell = spelling(vocab)
    for name, task in TASKS.items():
      for level in LEVELS:
        p = _problems(name, level, n=3)[0]
        text = prompt(task, p, spell)
        vocab.encode(text + spell.write(p.reference))
        assert text.endswith(p.statement + (f",eg input {p.shown[0]} gives {p.shown[1]}"
                                            if p.shown else ""))
        assert all(spell.write(prog) in text for _, prog in EXAMPLES[task.language])
        # The worked examples never solve the problem asked.
        for _, prog in EXAMPLES[task.language]:
          assert not judge(task.language, prog, p.tests, task.limits).exact, (name, prog)
  p = _problems("befunge_print", 1, n=1)[0]
  chars = prompt(TASKS["befunge_print"], p, spelling(phase1_vocab()))
  assert '"' not in chars and "QihQ,,@" in chars.split("\n")  # the worked example, spelled


def test_the_model_writes_in_the_vocabularys_spelling():
  spell = spelling(phase1_vocab())
  p = _problems("befunge_print", 2, n=1)[0]
  written = spell.write(p.reference)
  assert written.startswith("Q") and '"' not in written
  assert judge("befunge93", spell.read(written), p.tests).exact
  assert not judge("befunge93", written, p.tests).exact  # Q is not an instruction
  assert decode_budget(p.reference) % 64 == 0 and decode_budget(BF_SORT) >= 2 * len(BF_SORT)


# The judge's limits and comparisons.

def test_judge_stops_loops_and_never_passes_a_run_cut_short():
  t0 = time.perf_counter()
  j = judge("brainfuck", "+[]", [("", "")] * 3, Limits(max_steps=10_000))
  assert j.statuses == ("step_limit",) * 3 and j.passed == 0
  j = judge("befunge93", '"x",>', [("", "x")], Limits(max_steps=10 ** 9, time_limit_s=0.05))
  assert j.statuses == ("time_limit",) and j.passed == 0  # printed x, then never ended
  j = judge("brainfuck", "+[>+]", [("", "")], Limits(max_steps=10 ** 6, time_limit_s=0))
  assert j.statuses == ("error",)  # ran off the end of the tape
  assert time.perf_counter() - t0 < 30  # a loaded machine is slow, but nothing hangs
  assert judge("brainfuck", "[", [("", "")]).statuses == ("error",)
  assert run_program("befunge93", "1x@", "", Limits()).message == "bad instruction 'x' at (1,0)"
  with pytest.raises(ValueError, match="language"):
    run_program("cobol", "", "", Limits())


def test_outputs_match_ignores_trailing_whitespace_only():
  assert outputs_match("0 1 1", "0 1 1 ")
  assert outputs_match("ab", "ab\n\x00")
  assert not outputs_match("ab", " ab") and not outputs_match("0 1", "0  1")


def test_stopwatch_counts_interpreting():
  watch = Stopwatch()
  judge("brainfuck", "+" * 1000, [("", "")] * 5, stopwatch=watch)
  assert watch.runs == 5 and watch.seconds > 0


# The probe.

def test_probe_section_table_and_panels():
  probe, ctx = probes.get("esolang_write"), context()
  items = probe.items(ctx)
  assert {it.key for it in items} == {(n, lvl) for n in TASKS for lvl in LEVELS}
  results = score_outputs(items, [it.example.answer if it.key[0].startswith("bf")
                                  else "" for it in items])
  section = probe.summarize(ctx, results)
  assert probe.headline(section) == {"bf_write": 1.0, "befunge_write": 0.0}
  assert section["runs"] > 0 and section["interpret_seconds"] > 0
  assert any(line.startswith("write bf_sort") for line in probe.table(section))
  assert [p.title for p in probe.panels(section)] == [f"write {n}" for n in TASKS]


# The esolangs are evaluation only.

def _presets(path: pathlib.Path) -> list[str]:
  """Every preset a config file's get_config names (string constants compared to it)."""
  found = {""}
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Compare):
      for c in [node.left, *node.comparators]:
        if isinstance(c, ast.Constant) and isinstance(c.value, str):
          found.add(c.value)
        if isinstance(c, (ast.Set, ast.Tuple, ast.List)):
          found |= {e.value for e in c.elts if isinstance(e, ast.Constant)}
  return sorted(found)


def _training_configs():
  """(what, config) for every phase config and preset, every pipeline phase and every run of
  every thesis preset: everything the repository can train."""
  for path in sorted(pathlib.Path(ROOT, "configs").glob("*.py")):
    if path.name in ("__init__.py", "knowledge.py", "thesis.py"):
      continue  # knowledge trains on its own fact banks; thesis is expanded below
    for preset in _presets(path):
      try:
        yield f"{path.name}:{preset}", config_lib.load(f"{path.name}:{preset}")
      except ValueError:
        pass  # a string compared in the file that is not a preset
  for phase in pipeline.PHASES:
    yield f"pipeline {phase.name}", phase.load()
  for preset in ("", "tiny", "v5e-32", "v5p-128"):
    cfg = thesis.load_config(f"thesis.py:{preset}" if preset else "thesis.py")
    cfg.text_files = "corpus/*.txt"
    for arm, runs in thesis.plan(cfg).items():
      for run in runs:
        yield f"thesis:{preset} {arm}/{run.name}", thesis.run_config(run)


def test_no_training_mixture_of_any_phase_or_preset_contains_an_esolang():
  esolang = set(TASKS) | set(ESOLANG_PROBES) | {"bf", "befunge93", "befunge98"}
  seen = 0
  for what, cfg in _training_configs():
    names = config_lib.names(cfg.data.tasks) + config_lib.names(cfg.train.get("eval_tasks", ""))
    assert not set(names) & esolang, what
    for name in names:
      module = type(tasks.get(name)).__module__
      assert module.startswith("rf_jax.tasks."), (what, name, module)
    assert "stack_write" not in names, what  # opt-in: no default mixture has it
    seen += 1
  assert seen >= 20
  for name in esolang:
    with pytest.raises(ConfigError, match="unknown task"):
      tasks.get(name)


def test_an_esolang_cannot_be_put_in_a_mixture_from_the_command_line():
  config = config_lib.load("phase1.py:tiny")
  config.data.tasks = ("copy", "bf_copy")
  with pytest.raises(ConfigError, match="unknown task 'bf_copy'"):
    inputs.build_inputs(config, phase1_vocab())
  for module in ("rf_jax.befunge", "rf_jax.esolang", "rf_jax.esolang_write",
                 "rf_jax.esolang_judge", "rf_jax.esolang_bench"):
    assert not any(type(tasks.get(n)).__module__ == module for n in tasks.names())
