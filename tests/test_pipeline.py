"""Phase 1 -> 2 -> 3 through the real CLI, the handoff between phases, and its bad input."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import ROOT, load_config, mesh_of
from rf_jax import train
from rf_jax.experiments import thesis
from rf_jax import config as config_lib
from rf_jax.experiments import phases, pipeline, report
from rf_jax.data.packing import encode_example, pack_row
from rf_jax.errors import ConfigError
from rf_jax.runs import load_run
from rf_jax.step import apply_model, masked_xent
from rf_jax.tasks import get, make_example
from rf_jax.train_state import init_params, mesh_rules, model_config
from rf_jax.vocab import BYTE_TOKENS

from test_e2e import cli_env


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("pipeline")
  proc = subprocess.run([sys.executable, "-m", "rf_jax.pipeline", "--preset=tiny", f"--root={root}"],
                        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  (root / "stdout.txt").write_text(proc.stdout)
  return root


@pytest.mark.slow
def test_pipeline_prints_side_by_side(root):
  out = (root / "stdout.txt").read_text()
  assert "pipeline after phase 3" in out and "baseline (phase 3 from scratch)" in out
  table = json.loads((root / "report.json").read_text())
  bpb = table["phase-3 validation bits/byte (lower is better)"]
  assert 0 < bpb["pipeline after phase 3"] < 9 and 0 < bpb["baseline (phase 3 from scratch)"] < 9
  bridging = table["bridging exact match, level 1 (mean of verbal families)"]
  assert all(0 <= v <= 1 for v in bridging.values()) and len(bridging) == 3


@pytest.mark.slow
def test_each_phase_starts_from_the_previous_one(root):
  p1, p2_start, p2 = load_run(root / "phase1"), load_run(root / "phase2", 0), load_run(root / "phase2")
  p3_start = load_run(root / "phase3", 0)
  n1, n2 = p1.vocab.size, p2.vocab.size
  assert p1.vocab.is_prefix_of(p2.vocab) and n2 == n1 + len(BYTE_TOKENS)
  e1, e2 = np.asarray(p1.params["embed"]), np.asarray(p2_start.params["embed"])
  np.testing.assert_array_equal(e2[:n1], e1[:n1])
  np.testing.assert_array_equal(np.asarray(p2_start.params["unembed"])[:, :n1],
                                np.asarray(p1.params["unembed"])[:, :n1])
  for ch in "a7+(":  # byte tokens start from the symbol they spell
    np.testing.assert_array_equal(e2[p2.vocab.encode(ch)[0]], e1[p1.vocab.id(ch)])
  flat = lambda p: jax.tree.leaves(jax.tree.map(np.asarray, {k: v for k, v in p.items()
                                                             if k not in ("embed", "unembed")}))
  for a, b in zip(flat(p1.params), flat(p2_start.params)):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(np.asarray(p3_start.params["embed"])[:n2],
                                np.asarray(p2.params["embed"])[:n2])
  lineage = p3_start.meta["lineage"]
  assert [x["phase"] for x in lineage] == [1, 2]
  assert lineage[-1]["step"] == p2.step and lineage[0]["step"] == p1.step


def _probe_loss(graphdef, params, vocab, seq_len):
  ex = make_example(get("copy"), 123, 0, 1)
  ids, flags = encode_example(vocab, ex, False)
  batch = {k: jnp.asarray(v[None]) for k, v in pack_row([(ids, flags)], seq_len, vocab.pad_id).items()}
  logits = apply_model(graphdef, params, batch)
  return float(masked_xent(logits, batch["targets"], batch["loss_mask"])[0])


@pytest.mark.slow
def test_phase2_step0_beats_a_fresh_model(root):
  start = load_run(root / "phase2", 0)
  cfg = start.config
  fresh = init_params(model_config(cfg, start.vocab), start.mesh, mesh_rules(cfg), cfg.seed)
  handed = _probe_loss(start.graphdef, start.params, start.vocab, cfg.data.seq_len)
  scratch = _probe_loss(start.graphdef, fresh, start.vocab, cfg.data.seq_len)
  assert handed < scratch - 0.5, (handed, scratch)


# --- bad input -----------------------------------------------------------------------------

def _phase2(tmp_path, **overrides):
  c = load_config("phase2", "tiny")
  c.mesh.shape = (-1, 1, 1)
  c.train.steps = 2
  c.train.eval_levels = ()
  return thesis.apply(c, overrides)


def _one_line_error(c, workdir, match):
  with pytest.raises(ConfigError, match=match) as e:
    train.run(c, str(workdir))
  assert "\n" not in str(e.value)
  return str(e.value)


def test_init_from_nothing(tmp_path):
  msg = _one_line_error(_phase2(tmp_path, init_from=str(tmp_path / "nowhere")), tmp_path / "w",
                        "no checkpoints there")
  assert "config.init_from" in msg


@pytest.mark.slow
def test_init_from_incompatible_architecture(root, tmp_path):
  c = _phase2(tmp_path, init_from=str(root / "phase1"))
  c.model.mlp_dim = 96
  _one_line_error(c, tmp_path / "w", r"parameter params/blocks/0/mlp/w_\w+ has shape")


@pytest.mark.slow
def test_vocabulary_that_reorders_ids(tmp_path):
  p1 = load_config("phase1", "tiny")
  p1.mesh.shape, p1.train.steps, p1.train.eval_levels = (-1, 1, 1), 1, ()
  p1.data.extra_symbols = "é"
  train.run(p1, str(tmp_path / "p1"))
  msg = _one_line_error(_phase2(tmp_path, init_from=str(tmp_path / "p1")), tmp_path / "w",
                        "does not extend the checkpoint's")
  assert "id 99" in msg


@pytest.mark.slow
def test_resume_takes_precedence_over_init_from(root, tmp_path):
  c = _phase2(tmp_path, init_from=str(root / "phase1"))
  train.run(c, str(tmp_path / "w"))
  c = _phase2(tmp_path, init_from=str(tmp_path / "nowhere"))
  c.train.steps = 3
  out = train.run(c, str(tmp_path / "w"))  # resumes: init_from is not read
  assert json.loads((tmp_path / "w" / "final_metrics.json").read_text())["step"] == 3


def test_empty_or_unreadable_text_glob(tmp_path):
  c = load_config("phase3", "tiny,baseline")
  c.mesh.shape, c.train.steps = (-1, 1, 1), 1
  c.data.text_files = (str(tmp_path / "none" / "*.txt"),)
  _one_line_error(c, tmp_path / "w", "matches no files")
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"text": "fine"}\n{not json\n')
  c.data.text_files = (str(bad),)
  _one_line_error(c, tmp_path / "w2", "bad.jsonl")


@pytest.mark.slow
def test_sentencepiece_vocabulary_travels_in_the_checkpoint(root, tmp_path):
  c = _phase2(tmp_path, init_from=str(root / "phase1"))
  c.data.update(tokenizer="sentencepiece", sp_vocab_size=512)
  train.run(c, str(tmp_path / "w"))
  run = load_run(tmp_path / "w", 0)
  v = run.vocab
  assert v.text == "sentencepiece" and v.sp_model and v.size == 99 + 512
  text = "Return the sum of 12 and 7, then sort [3, 1]."
  assert v.decode(v.encode(text)) == text
  p1 = load_run(root / "phase1")
  e0, e1 = np.asarray(run.params["embed"]), np.asarray(p1.params["embed"])
  seeded = [i for i in range(99, v.size) if v.spelling(i) == "7"]
  assert seeded and all((e0[i] == e1[p1.vocab.id("7")]).all() for i in seeded)
  # Resuming reuses the checkpoint's model even if the corpus it was trained on changed.
  (tmp_path / "other.txt").write_text("a different corpus " * 200)
  c.data.text_files = (str(tmp_path / "other.txt"),)
  c.train.steps = 3
  train.run(c, str(tmp_path / "w"))
  assert load_run(tmp_path / "w").vocab == v


@pytest.mark.slow
def test_init_from_a_relative_path(root, tmp_path, monkeypatch):
  monkeypatch.chdir(root.parent)  # Orbax needs absolute paths; the handoff makes them so
  c = _phase2(tmp_path, init_from=os.path.join(root.name, "phase1"))
  train.run(c, str(tmp_path / "w"))
  assert json.loads((tmp_path / "w" / "final_metrics.json").read_text())["step"] == 2
  assert load_run(tmp_path / "w").meta["lineage"]


def test_a_failed_stage_is_one_line_and_its_exit_status(capsys):
  assert phases.run_logged("phase2", [sys.executable, "-c", "raise SystemExit(3)"]) == 3
  out, err = capsys.readouterr()
  assert out.startswith("=== phase2: -c ")
  assert err == ("error: phase2 failed (exit 3); fix it and rerun the same command: finished "
                 "runs are not repeated\n")
  assert phases.run_logged("phase3", [sys.executable, "-c", "pass"]) == 0
  assert capsys.readouterr().err == ""


# --- phases as data --------------------------------------------------------------------------

def test_a_new_phase_is_one_record_run_in_order_from_its_parent(capsys):
  more = pipeline.PHASES + (phases.Phase("phase4", "phase2.py", parent="phase3",
                                         overrides={"train.steps": 7}),)
  names = [n for n, _ in pipeline.commands("/r", "", ["--config.x=1"], phases=more)]
  assert names == ["phase1", "phase2", "phase3", "baseline", "phase4"]
  assert pipeline.main(["--root=/r", "--preset=tiny", "--dry-run"], phases=more) == 0
  lines = capsys.readouterr().out.splitlines()
  assert [l.split(":")[0] for l in lines] == names
  phase4 = lines[-1].split()
  assert "--workdir=/r/phase4" in phase4 and "--config.init_from=/r/phase3" in phase4
  assert "--config.train.steps=7" in phase4
  config = next(a for a in phase4 if a.startswith("--config="))
  assert config.endswith("/phase2.py:tiny") and os.path.isfile(config[9:-5])


def test_a_phase_before_its_parent_is_one_line():
  wrong = (phases.Phase("b", "phase2.py", parent="a"), phases.Phase("a", "phase1.py"))
  with pytest.raises(ConfigError, match="declare the parent first") as e:
    pipeline.commands("/r", "", [], phases=wrong)
  assert "\n" not in str(e.value)
  assert pipeline.main(["--only=phase9", "--dry-run"]) == 2


def test_phase_commands_name_config_files_that_exist_anywhere(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # not a checkout: no configs/ here
  specs = [a[len("--config="):] for _, argv in pipeline.commands("w", "tiny", [])
           for a in argv if a.startswith("--config=")]
  specs += [a[len("--config="):] for runs in thesis.plan(thesis.load_config("thesis.py:tiny")).values()
            for r in runs for a in r.argv("w", 0) if a.startswith("--config=")]
  assert len(specs) == 4 + 11
  for spec in specs:
    path, _, preset = spec.partition(":")
    assert os.path.isabs(path) and os.path.isfile(path) and preset.startswith("tiny"), spec
    assert config_lib.load(spec).name  # the trainer can load exactly this


def test_report_writer_writes_markdown_json_and_png(tmp_path):
  paths = report.write(str(tmp_path / "r"), "| a |", {"a": 1}, png=b"\x89PNG")
  assert (tmp_path / "r" / "report.md").read_text() == "| a |\n"
  assert report.read_json(paths["json"]) == {"a": 1}
  assert (tmp_path / "r" / "report.png").read_bytes() == b"\x89PNG"
  assert report.read_json(str(tmp_path / "none.json")) == {}


def test_overrides_fit_the_config_and_the_command_line():
  cfg = ml_collections.ConfigDict({"data": {"tasks": ("copy", "dyck")}, "train": {"steps": 1}})
  # a tuple field takes "a,b" as a tuple
  typed = phases.typed(cfg, {"data.tasks": "copy,sort", "train.steps": 3})
  assert typed == {"data.tasks": ("copy", "sort"), "train.steps": 3}
  argv = phases.argv(phases.Phase("p", "phase1.py", overrides=typed), "/r")
  assert argv[-2:] == ["--config.data.tasks=('copy', 'sort')", "--config.train.steps=3"]
