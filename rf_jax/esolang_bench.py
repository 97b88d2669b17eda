"""EsoLang-Bench problem files, read for the `esolang_bench` probe.

EsoLang-Bench (Sharma and Chopra, 2026) states programming problems in English, each with
input/output test cases, and asks for programs in five esoteric languages. A file in its
JSON format:

    {"metadata": {"supported_languages": ["Brainfuck", "Befunge-98", ...], ...},
     "problems": [{"id": "E01", "title": "...", "difficulty": "easy", "description": "...",
                   "input_output_examples": [{"input": "...", "output": "..."}, ...]}, ...]}

(`items` for `problems` and `tests` for `input_output_examples` are read too, as the
benchmark's own loader does). Of its languages, Brainfuck and Befunge-98 are scored with
rf_jax's runner (rf_jax/esolang_judge.py; both when the file names no languages). The
prompt holds the language's description, the problem's title and description and its first
test case as an example; every test case judges the program. Differences from the
benchmark's own harness: outputs must match exactly after trailing whitespace (its harness
also accepts, outside Brainfuck, any output containing the expected number); and one
greedy attempt, no interpreter feedback.
"""
from __future__ import annotations

import dataclasses
import json

from rf_jax.befunge import DOC_98
from rf_jax.esolang import BF_DOC
from rf_jax.esolang_judge import Limits, Spelling
from rf_jax.errors import ConfigError

LANGUAGES = {"Brainfuck": "brainfuck", "Befunge-98": "befunge98"}  # file's name -> judge's
DOCS = {"brainfuck": BF_DOC, "befunge98": DOC_98}
LIMITS = Limits(max_steps=100_000, time_limit_s=0.5)
BUDGET = 256  # tokens a model may write per program


@dataclasses.dataclass(frozen=True)
class BenchProblem:
  id: str
  title: str
  difficulty: str
  description: str
  tests: tuple[tuple[str, str], ...]


def _tests(entry: dict, where: str) -> tuple[tuple[str, str], ...]:
  tests = entry.get("input_output_examples") or entry.get("tests")
  if not isinstance(tests, list) or not tests:
    raise ConfigError(f"{where} has no test cases (input_output_examples)")
  out = []
  for case in tests:
    if not (isinstance(case, dict) and isinstance(case.get("input", ""), str)
            and isinstance(case.get("output"), str)):
      raise ConfigError(f"{where}: every test case needs string fields input and output")
    out.append((case.get("input", ""), case["output"]))
  return tuple(out)


def parse(raw, path: str) -> tuple[list[BenchProblem], tuple[str, ...]]:
  """(problems, judge languages) from a decoded EsoLang-Bench file."""
  entries = raw.get("problems", raw.get("items")) if isinstance(raw, dict) else None
  if not isinstance(entries, list) or not entries:
    raise ConfigError(f"{path} is not an EsoLang-Bench file: it needs a non-empty list "
                      "'problems' of {id, description, input_output_examples}")
  problems = []
  for i, e in enumerate(entries):
    where = f"{path}: problem {i + 1}"
    if not isinstance(e, dict) or not isinstance(e.get("description"), str):
      raise ConfigError(f"{where} has no description")
    problems.append(BenchProblem(str(e.get("id", i + 1)), str(e.get("title", "")),
                                 str(e.get("difficulty", "unknown")), e["description"],
                                 _tests(e, where)))
  listed = (raw.get("metadata") or {}).get("supported_languages") or list(LANGUAGES)
  languages = tuple(LANGUAGES[n] for n in LANGUAGES if n in listed)
  if not languages:
    raise ConfigError(f"{path} lists neither Brainfuck nor Befunge-98 among its languages "
                      f"({', '.join(map(str, listed))}); rf_jax scores those two")
  return problems, languages


def load(path: str) -> tuple[list[BenchProblem], tuple[str, ...]]:
  try:
    with open(path, encoding="utf-8") as f:
      raw = json.load(f)
  except OSError as e:
    raise ConfigError(f"cannot read the EsoLang-Bench file {path}: {e.strerror}") from None
  except json.JSONDecodeError as e:
    raise ConfigError(f"{path} is not JSON ({e.msg} at line {e.lineno})") from None
  return parse(raw, path)


def prompt(problem: BenchProblem, language: str, spelling: Spelling = Spelling()) -> str:
  inp, out = problem.tests[0]
  return "\n".join([spelling.write(DOCS[language]),
                    f"problem: {problem.title}. {problem.description}",
                    f"eg input {inp} gives {out}"])
