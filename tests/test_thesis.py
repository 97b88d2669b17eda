"""The thesis experiment: matched-FLOPs plan, seed summary, and the tiny preset end to end."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from etils import epath

from rf_jax import config as config_lib
from rf_jax.experiments import thesis
from rf_jax.errors import ConfigError
from rf_jax.experiments import pipeline
from tests.gcs_emulator import emulator
from tests.helpers import ROOT


def test_every_arm_gets_the_reference_arms_flops_phase_by_phase():
  config = thesis.load_config("thesis.py")
  arms = thesis.plan(config)
  assert list(arms) == config.arms.split(",")
  ref = [thesis.run_flops(r) for r in arms["reasoning_first"]]
  total = sum(ref)
  for arm, runs in arms.items():
    flops = [thesis.run_flops(r) for r in runs]
    assert abs(sum(flops) - total) / total < 0.02, (arm, sum(flops), total)
    if arm in ("reasoning_first_reward", "reasoning_memory"):
      for f, r in zip(flops, ref):
        assert abs(f - r) / r < 0.02
  # reward costs more per step (rollouts), so its phase 1 takes fewer steps
  steps = lambda arm: arms[arm][0].overrides["train.steps"]
  assert steps("reasoning_first_reward") < steps("reasoning_first") == config.budget.phase1
  assert arms["reasoning_memory"][0].overrides["model.attention_window"] == config.window
  # the reasoning arms are the pipeline's phase records, in order, each from its parent
  chain = [(p.name, p.parent) for p in pipeline.PHASES[:3]]
  for arm in ("reasoning_first", "reasoning_first_reward", "reasoning_memory"):
    assert [(r.name, r.parent) for r in arms[arm]] == chain
  text, finetune = arms["text_first"]
  assert text.config.endswith("baseline") and text.parent is None and finetune.parent == "text"
  assert finetune.overrides["train.steps"] == config.budget.finetune
  argv = finetune.argv("/r", 2)
  assert "--workdir=/r/seed2/text_first/tasks" in argv
  assert "--config.init_from=/r/seed2/text_first/text" in argv and "--config.seed=2" in argv


def test_unknown_arm_is_one_line():
  config = thesis.load_config("thesis.py")
  config.arms = "reasoning_first,telepathy"
  with pytest.raises(ValueError, match="telepathy"):
    thesis.plan(config)


def test_metrics_are_the_probes_headline_metrics_and_the_cost():
  assert thesis.METRICS == ("in_distribution", "out_of_distribution", "renamed", "brainfuck",
                            "befunge", "bf_write", "befunge_write", "bridging_L1",
                            "bits_per_byte", "train_tflop")


def test_summary_is_mean_and_spread_over_seeds():
  rows = [{m: None for m in thesis.METRICS} for _ in range(3)]
  for i, r in enumerate(rows):
    r["renamed"] = [0.1, 0.2, 0.6][i]
  s = thesis.summarize({"a": rows})["a"]
  assert s["renamed"]["mean"] == pytest.approx(0.3)
  assert s["renamed"]["std"] == pytest.approx(0.216, abs=1e-3)
  assert s["brainfuck"]["mean"] is None
  assert "0.300 ± 0.216" in thesis.table({"a": s})
  ref = thesis.summarize({"r": [{**r, "renamed": 0.15} for r in rows]})["r"]
  lines = thesis.verdicts({"text_first": ref, "a": s})
  assert lines == ["a vs text_first, renamed: +0.150 (not larger than the seed spread 0.216)"]
  far = thesis.summarize({"a": [{**r, "renamed": 0.9} for r in rows]})["a"]
  assert "larger than the seed spread 0.000" in thesis.verdicts({"text_first": ref, "a": far})[0]


@pytest.mark.slow
def test_tiny_thesis_end_to_end_gives_every_arm_every_metric():
  with emulator() as bucket:  # the root on gs:// (a local GCS emulator), as on a TPU slice
    thesis_end_to_end(epath.Path(f"{bucket}/thesis"))


def thesis_end_to_end(root):
  out = subprocess.run(
      [sys.executable, "-m", "rf_jax.thesis", "--config=thesis.py:tiny", f"--root={root}",
       "--seeds=0"], cwd=ROOT, capture_output=True, text=True, timeout=900,
      env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"})
  assert out.returncode == 0, out.stderr[-3000:]
  report = json.loads((root / "report.json").read_text())
  summary = report["summary"]
  assert set(summary) == {"text_first", "reasoning_first", "reasoning_first_reward",
                          "reasoning_memory"}
  for arm, metrics in summary.items():
    assert set(metrics) == set(thesis.METRICS)
    for name, m in metrics.items():
      assert m["mean"] is not None and len(m["values"]) == 1, (arm, name)
  flops = [m["train_tflop"]["mean"] for m in summary.values()]
  assert max(flops) / min(flops) < 1.3  # tiny step counts round coarsely
  assert (root / "report.png").stat().length > 1000
  assert "reasoning_memory" in (root / "report.md").read_text()
  meta = json.loads((root / "seed0" / "reasoning_memory" / "phase3" / "final_metrics.json"
                     ).read_text())
  assert "val/bits_per_byte" in meta


@pytest.mark.slow
def test_a_failed_evaluation_is_one_line_and_its_exit_status(tmp_path, capfd):
  """The arm trains; its evaluation (its own process) fails: run_arm says which, in one line,
  and returns that process's exit status, so the driver stops and a rerun retries."""
  spec = tmp_path / "my_thesis.py"
  shutil.copy(config_lib.resolve("thesis.py"), spec)
  args, _ = thesis.parse_args([f"--config={spec}:tiny", f"--root={tmp_path / 'root'}"])
  config = thesis.experiment_config(args)
  runs = thesis.plan(config)["text_first"]
  # the evaluation process cannot read the experiment's config any more
  spec.write_text("def get_config(preset):\n  raise ValueError('changed under the run')\n")
  rc, metrics = thesis.run_arm(args, config, 0, "text_first", runs, [])
  assert rc == 2 and metrics is None
  err = capfd.readouterr().err.strip().splitlines()
  assert err[-1] == "error: evaluating seed 0 text_first failed (exit 2); rerun to retry"
  for r in runs:  # the training it did is kept for the retry
    assert (tmp_path / "root" / "seed0" / "text_first" / r.name / "final_metrics.json").exists()


@pytest.mark.parametrize("preset,chips", [("v5e-32", 32), ("v5p-128", 64)])
def test_slice_presets_match_flops_and_fit_the_slice(preset, chips):
  config = thesis.load_config(f"thesis.py:{preset}")
  with pytest.raises(ConfigError, match="pass --text_files=GLOB") as e:
    thesis.plan(config)
  assert "\n" not in str(e.value)
  config.text_files = "gs://b/corpus/*.jsonl"
  arms = thesis.plan(config)
  ref = [thesis.run_flops(r) for r in arms["reasoning_first"]]
  for arm, runs in arms.items():
    assert sum(thesis.run_flops(r) for r in runs) == pytest.approx(sum(ref), rel=1e-3), arm
    for r in runs:
      cfg = thesis.apply(thesis.load_config(r.config), r.overrides)
      assert cfg.data.text_files == (config.text_files,) and cfg.model.dtype == "bfloat16"
      assert cfg.train.batch_size % chips == 0 and cfg.data.seq_len == 1024
      if cfg.objective.kind != "next_token":
        assert cfg.rl.prompts * cfg.rl.group_size % chips == 0
      argv = r.argv("gs://b/th", 1)
      assert f"--workdir=gs://b/th/seed1/{arm}/{r.name}" in argv
  tokens = sum(thesis.run_tokens(r) for r in arms["reasoning_first"])
  assert 4e9 < tokens < 2e10  # billions of tokens, not a CPU budget
  flops = sum(thesis.run_flops(r) for runs in arms.values() for r in runs)
  assert thesis.estimate(config, flops).startswith(f"{preset}: ")


def test_slice_preset_dry_run_needs_a_corpus(capsys):
  assert thesis.main(["--config=thesis.py:v5e-32", "--dry-run"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "--text_files" in err
  assert thesis.main(["--config=thesis.py:v5e-32", "--dry-run", "--root=gs://b/th",
                      "--text_files=gs://b/c/*.jsonl"]) == 0
  out = capsys.readouterr().out
  assert "B tokens" in out and "h per seed at 40% MFU" in out
