"""The evaluator: report, plots, --compare, --probes, and its bad-input errors."""
import json
import os
import re
import shutil

import jax
import numpy as np
import pytest

from rf_jax import evaluate, probes, sharding, tasks, train
from rf_jax.probes.brainfuck import described_example
from rf_jax.probes.renamed import renamed
from rf_jax.tasks.bridging import VERBAL_PREFIX
from rf_jax.vocab import phase1_vocab

from helpers import load_config, run_on_one_device


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("run") / "w"
  config = load_config()
  config.train.update(steps=10, eval_every=0, eval_levels=(), checkpoint_every=0)
  run_on_one_device(config, workdir)
  return workdir


@pytest.mark.slow
def test_report_json_png_and_table(run_dir, capsys):
  assert evaluate.main([f"--workdir={run_dir}", "--examples=4"]) == 0
  out = capsys.readouterr().out
  assert "in-dist" in out and "renamed" in out and "brainfuck" in out
  assert "befunge output prediction" in out and "write befunge_fact" in out
  assert "bridging: does not apply" in out and "bits_per_byte: does not apply" in out
  assert "esolang_bench: does not apply" in out
  assert re.search(r"timing: [\d.]+s in all, [\d.]+s greedy decoding and scoring, of which "
                   r"[\d.]+s interpreting programs \([\d.]+% of the evaluation\)", out)
  rep = json.loads((run_dir / "eval" / "step_10.json").read_text())
  assert list(rep["probes"]) == ["levels", "renamed", "brainfuck", "befunge", "esolang_write",
                                 "bridging", "bits_per_byte", "esolang_bench"]
  assert set(rep["probes"]["esolang_write"]["tasks"]) == {
      "bf_copy", "bf_print", "bf_sort", "befunge_print", "befunge_fib", "befunge_fact"}
  t = rep["timing"]
  assert 0 < t["interpret_s"] < t["decode_and_score_s"] < t["total_s"]
  assert t["interpret_s"] == rep["probes"]["esolang_write"]["interpret_seconds"]
  assert set(rep["families"]) == {"copy", "reverse", "sort", "add", "parity", "dyck"}
  fam = rep["families"]["add"]  # the by-family view merges the levels and renamed sections
  assert set(fam["levels"]) == {"1", "2", "3", "4"} and fam["trained_levels"] == [1, 2]
  assert 0 <= fam["in_distribution"] <= 1 and 0 <= fam["out_of_distribution"] <= 1
  assert 0 <= fam["renamed"] <= 1
  assert set(rep["probes"]["brainfuck"]["levels"]) == {"1", "2", "3", "4"}
  assert rep["probes"]["bridging"] is None and rep["probes"]["bits_per_byte"] is None
  head = probes.headline(rep)
  assert set(head) == set(probes.metric_names())
  assert head["bridging_L1"] is None and 0 <= head["in_distribution"] <= 1
  cells = [r["exact"] for f in rep["families"].values() for l, r in f["levels"].items()
           if int(l) > 2]
  assert head["out_of_distribution"] == pytest.approx(np.mean(cells))
  png = (run_dir / "eval" / "step_10.png").read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
  assert list((run_dir / "eval").glob("events.out.tfevents.*"))
  titles = set(evaluate.panels([rep]))
  assert {"befunge", "write bf_copy", "write befunge_fib"} <= titles
  tags = evaluate.scalars(rep)
  assert {"transfer/befunge", "transfer/bf_write", "transfer/befunge_write"} <= set(tags)


@pytest.mark.slow
def test_compare_plots_side_by_side_and_refuses_another_vocabulary(run_dir, tmp_path, capsys):
  other = tmp_path / "other"
  shutil.copytree(run_dir, other)
  assert evaluate.main([f"--workdir={run_dir}", f"--compare={other}", "--examples=2"]) == 0
  assert (run_dir / "eval" / "compare.png").exists()
  out = capsys.readouterr().out
  assert "in_distribution" in out.split("metric", 1)[1] and "brainfuck" in out
  meta_path = other / "checkpoints" / "10" / "meta" / "metadata"
  meta = json.loads(meta_path.read_text())
  meta["vocab"]["tokens"].append("<extra>")
  meta_path.write_text(json.dumps(meta))
  assert evaluate.main([f"--workdir={run_dir}", f"--compare={other}", "--examples=2"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: run ") and "different vocabulary" in err and "\n" not in err


@pytest.mark.slow
def test_missing_checkpoint_and_missing_metadata(run_dir, tmp_path, capsys):
  assert evaluate.main([f"--workdir={tmp_path / 'nothing'}"]) == 2
  assert "no checkpoints under" in capsys.readouterr().err
  broken = tmp_path / "nometa"
  shutil.copytree(run_dir, broken)
  shutil.rmtree(broken / "checkpoints" / "10" / "meta")
  assert evaluate.main([f"--workdir={broken}"]) == 2
  err = capsys.readouterr().err
  assert "has no metadata" in err and err.count("\n") == 1


@pytest.mark.slow
def test_unknown_family_or_step(run_dir, capsys):
  assert evaluate.main([f"--workdir={run_dir}", "--families=copy,nope"]) == 2
  assert "unknown task 'nope'" in capsys.readouterr().err
  assert evaluate.main([f"--workdir={run_dir}", "--step=999"]) == 2
  assert "no checkpoint at step 999" in capsys.readouterr().err


def test_renamed_syntax_keeps_the_problem():
  v = phase1_vocab()
  for name in tasks.names():
    if name.startswith(VERBAL_PREFIX):
      continue  # English prompts have no symbolic syntax to rename
    task = tasks.get(name)
    for i in range(20):
      ex = tasks.make_example(task, 0, i, 2)
      r = renamed(task, ex, np.random.default_rng(i))
      doc, body = r.prompt.split("\n")
      mapping = {}
      for part in doc.split(", ")[1:]:
        new, old = part.split(" is ")
        mapping[new] = old
      back = lambda s: "".join(mapping.get(c, c) for c in s)
      assert back(body.split(":", 1)[1]) == ex.prompt.split(":", 1)[1]
      assert back(r.answer) == ex.answer
      v.encode(r.prompt + r.answer)
  add = tasks.get("add")
  ex = tasks.make_example(add, 0, 0, 1)
  assert "+" not in renamed(add, ex, np.random.default_rng(0)).prompt.split("\n")[1]


@pytest.mark.slow
def test_probes_flag_chooses_probes_and_fixed_train_levels(run_dir, capsys):
  assert evaluate.main([f"--workdir={run_dir}", "--examples=2", "--probes=brainfuck"]) == 0
  rep = json.loads((run_dir / "eval" / "step_10.json").read_text())
  assert list(rep["probes"]) == ["brainfuck"] and rep["families"] == {}
  assert "brainfuck output prediction" in capsys.readouterr().out
  assert evaluate.main([f"--workdir={run_dir}", "--probes=levels,telepathy"]) == 2
  err = capsys.readouterr().err
  assert "unknown probe 'telepathy'" in err and "--probe_modules" in err and err.count("\n") == 1
  rep = evaluate.evaluate_run(str(run_dir), 2, probes=("levels",), families=["add"],
                              train_levels=(1, 3))
  add = rep["probes"]["levels"]["families"]["add"]
  assert add["trained_levels"] == [1, 3]
  assert add["out_of_distribution"] == add["levels"]["4"]["exact"]


@pytest.mark.slow
def test_esolang_bench_flag_scores_a_file_and_bad_files_are_one_line(run_dir, capsys):
  sample = os.path.join(os.path.dirname(__file__), "data", "esolang_bench_sample.json")
  assert evaluate.main([f"--workdir={run_dir}", "--examples=2", "--probes=brainfuck",
                        f"--esolang_bench={sample}"]) == 0
  out = capsys.readouterr().out
  assert "esolang-bench brainfuck: solved" in out and "esolang-bench befunge98: solved" in out
  assert "S05: unsupported: the prompt's character" in out  # phase 1's symbols lack '"'
  rep = json.loads((run_dir / "eval" / "step_10.json").read_text())
  assert list(rep["probes"]) == ["brainfuck", "esolang_bench"]
  assert rep["probes"]["esolang_bench"]["languages"]["befunge98"]["scored"] == 4
  assert evaluate.main([f"--workdir={run_dir}", "--esolang_bench=/no/such.json"]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: cannot read the EsoLang-Bench file") and err.count("\n") == 1


def test_brainfuck_probe_is_answerable():
  from rf_jax.esolang import BF_DOC, run_bf
  ex = described_example(np.random.default_rng(3), 2)
  doc, program = ex.prompt.split("\n")
  assert doc == BF_DOC and program.startswith("bf:")
  assert run_bf(program[3:]).output.decode() == ex.answer
