"""The reward-from-scratch experiment (python -m rf_jax.reward) end to end on the tiny preset:
every arm stops at its FLOP budget, spt_rft splits it between its two phases, and the report
holds the table, the curves and the transfer columns; a rerun repeats nothing."""
import json
import os
import subprocess
import sys

import pytest

from rf_jax.experiments import reward

from helpers import ROOT

pytestmark = pytest.mark.slow


def _run(root, *extra):
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  return subprocess.run([sys.executable, "-m", "rf_jax.reward", f"--root={root}", "--tflop=0.0004",
                         "--preset=tiny", "--arms=next_token,rl_token,spt_rft", "--seeds=0",
                         "--eval_every=4", "--examples=2", "--set", "rl.prompts=2",
                         "--set", "rl.group_size=2", *extra], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)


def test_reward_experiment_at_equal_flops(tmp_path):
  out = _run(tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]
  data = json.loads((tmp_path / "report.json").read_text())
  assert set(data["summary"]) == {"next_token", "rl_token", "spt_rft"}
  for arm, rows in data["results"].items():
    (r,) = rows
    # each run stops once its counted FLOPs reach its budget: within one step of it
    assert 0.4e-3 <= r["train_tflop"] < 0.4e-3 * 1.6, (arm, r["train_tflop"])
    assert r["curve"] and r["curve"][-1]["tflop"] <= r["train_tflop"] + 1e-9
    assert set(r["level1"]) == {"copy", "reverse", "sort", "add", "parity", "dyck"}
    assert r["out_of_distribution"] is not None and r["renamed"] is not None
  spt = reward.spent(str(tmp_path / "seed0/spt_rft/spt"))
  assert 0.2e12 * 1e-3 <= spt < 0.2e12 * 1e-3 * 1.6  # half the budget, then reward from it
  assert "| rl_token |" in (tmp_path / "report.md").read_text()
  assert (tmp_path / "report.png").stat().st_size > 1000
  again = _run(tmp_path)
  assert again.returncode == 0 and "FLOP budget" in again.stdout, again.stdout[-2000:]
  assert "reached at step" in again.stdout and "resumed from step" in again.stdout


def test_unknown_arm_is_one_line():
  with pytest.raises(SystemExit):
    reward.parse_args(["--tflop=1", "--arms=ppo"])
