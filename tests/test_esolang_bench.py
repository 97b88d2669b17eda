"""EsoLang-Bench's file format: a sample file of our own in its layout is read, its Brainfuck
and Befunge-98 problems are judged with the same runner, bad files are one-line errors, and
what cannot be judged fairly is reported per problem, never scored as wrong."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest

from rf_jax import probes
from rf_jax.errors import ConfigError
from rf_jax.esolang_bench import load, parse, prompt
from rf_jax.esolang_judge import spelling
from rf_jax.esolang_write import bf_print_program
from rf_jax.greedy import score_outputs
from rf_jax.vocab import phase1_vocab

from test_probes import context

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "esolang_bench_sample.json")

# Right programs for the sample's problems (Brainfuck where it is short).
RIGHT = {
    ("brainfuck", "S01"): bf_print_program("ok"),
    ("brainfuck", "S02"): ",[..,]",
    ("brainfuck", "S05"): bf_print_program("yes"),
    ("befunge98", "S01"): '"ko",,@',
    ("befunge98", "S02"): "#@~:,,",        # ~ at the end of the input reverses onto @
    ("befunge98", "S03"): "&fe-+.@",       # Befunge-98's f and e push 15 and 14
    ("befunge98", "S04"): "&&+.@",         # & reads a minus sign too
    ("befunge98", "S05"): '"sey",,,@',
}


def bench_context(tokenizer="chars"):
  ctx = context(tokenizer)
  return dataclasses.replace(ctx, options={"esolang_bench": SAMPLE})


def test_reads_the_sample_file():
  problems, languages = load(SAMPLE)
  assert languages == ("brainfuck", "befunge98")  # Whitespace is listed but not ours
  assert [p.id for p in problems] == ["S01", "S02", "S03", "S04", "S05"]
  assert problems[3].tests[1] == ("10 -4", "6") and problems[3].difficulty == "medium"
  assert problems[4].tests == (("", "yes"), ("", "yes"))  # "tests" read like the original
  p = prompt(problems[1], "befunge98")
  assert p.startswith("befunge98:") and p.endswith("eg input ab gives aabb")


@pytest.mark.parametrize("raw,message", [
    ({"problems": []}, "is not an EsoLang-Bench file"),
    ([1, 2], "is not an EsoLang-Bench file"),
    ({"problems": [{"id": "A"}]}, "problem 1 has no description"),
    ({"problems": [{"description": "d"}]}, "problem 1 has no test cases"),
    ({"problems": [{"description": "d", "tests": [{"input": "1", "output": 2}]}]},
     "string fields input and output"),
    ({"metadata": {"supported_languages": ["Whitespace"]},
      "problems": [{"description": "d", "tests": [{"input": "", "output": "x"}]}]},
     "lists neither Brainfuck nor Befunge-98"),
])
def test_bad_files_are_one_line_errors(raw, message, tmp_path):
  with pytest.raises(ConfigError, match=message) as e:
    parse(raw, "f.json")
  assert "\n" not in str(e.value)
  path = tmp_path / "f.json"
  path.write_text(json.dumps(raw))
  with pytest.raises(ConfigError, match=message):
    load(str(path))
  path.write_text("{not json")
  with pytest.raises(ConfigError, match="is not JSON"):
    load(str(path))
  with pytest.raises(ConfigError, match="cannot read the EsoLang-Bench file"):
    load(str(tmp_path / "missing.json"))


def _judged(tokenizer, programs):
  """The probe's section when the model writes `programs` (key -> program; else nothing),
  spelled as the run's vocabulary writes them."""
  probe, ctx = probes.get("esolang_bench"), bench_context(tokenizer)
  assert probe.applies(ctx) and not probe.applies(context(tokenizer))
  items = probe.items(ctx)
  spell = spelling(ctx.run.vocab)
  texts = [spell.write(programs.get(it.key, "")) for it in items]
  return probe, items, probe.summarize(ctx, score_outputs(items, texts))


def test_right_programs_are_scored_right_with_the_same_runner():
  probe, items, section = _judged("bytes", RIGHT)
  assert len(items) == 10 and all(it.exact_by_score and it.max_new == 256 for it in items)
  bf, b98 = section["languages"]["brainfuck"], section["languages"]["befunge98"]
  assert {pid: p["exact"] for pid, p in b98["problems"].items()} == dict.fromkeys(
      ["S01", "S02", "S03", "S04", "S05"], 1.0)
  assert (b98["solved"], b98["scored"], b98["unsupported"]) == (5, 5, {})
  assert (bf["solved"], bf["scored"]) == (3, 5) and bf["by_difficulty"] == {
      "easy": pytest.approx(2 / 3), "medium": 0.5}
  assert section["exact"] == pytest.approx(8 / 10)
  assert probe.headline(section) == {} and section["runs"] == 2 * (4 * 3 + 2)  # every test
  assert any("solved 5/5" in line for line in probe.table(section))
  assert [p.title for p in probe.panels(section)] == ["esolang-bench brainfuck",
                                                      "esolang-bench befunge98"]


def test_what_cannot_be_judged_is_reported_per_problem_not_scored():
  unsupported = {**RIGHT, ("befunge98", "S03"): "y&1+.@"}  # y: system info, not implemented
  probe, items, section = _judged("chars", unsupported)
  assert len(items) == 8  # S05's description has a '"', which phase 1's symbols lack
  b98 = section["languages"]["befunge98"]
  assert b98["unsupported"] == {
      "S03": "unsupported: y at (0,0)",
      "S05": "unsupported: the prompt's character '\"' is not in the run's vocabulary"}
  assert (b98["solved"], b98["scored"], b98["exact"]) == (3, 3, 1.0)
  lines = probe.table(section)
  assert "  S03: unsupported: y at (0,0)" in lines
  # Phase 1's symbols spell Befunge's quote Q: the model's Q runs as a quote.
  assert [it for it in items if it.key == ("befunge98", "S01")][0].score(
      None, 'QkoQ,,@') == 1.0
  for it in items:
    phase1_vocab().encode(it.example.prompt)
