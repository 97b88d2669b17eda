"""A diverging run (an absurd learning rate) stops with one line naming the step, after
saving nothing non-finite; train.skip_nonfinite skips that many bad steps first."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import rf_jax
from rf_jax.errors import Diverged

from helpers import ROOT, load_config, run_on_one_device

pytestmark = pytest.mark.slow  # each test trains a run


def finite_checkpoints(workdir) -> dict[int, bool]:
  steps = sorted(int(p) for p in os.listdir(workdir / "checkpoints") if p.isdigit())
  return {s: all(bool(np.isfinite(np.asarray(x)).all()) for x in jax.tree.leaves(
      rf_jax.load(str(workdir), step=s, devices=jax.devices()[:1]).run.params)) for s in steps}


def test_nonfinite_loss_stops_the_cli_with_one_line_and_saves_nothing_nonfinite(tmp_path):
  r = subprocess.run(
      [sys.executable, "-m", "rf_jax.main", "--config=configs/phase1.py:tiny",
       "--config.mesh.shape=(1,1,1)", "--config.train.learning_rate=1e30",
       "--config.train.checkpoint_every=2", "--config.train.eval_every=0",
       f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS="--xla_force_host_platform_device_count=1"))
  assert r.returncode != 0 and "Traceback" not in r.stderr
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and " nan at step " in last, r.stderr[-2000:]
  bad_step = int(last.split(" at step ")[1].split(":")[0])
  saved = finite_checkpoints(tmp_path)
  assert saved and all(saved.values())  # every checkpoint on disk is finite
  newest = max(saved)
  assert newest < bad_step and f"the newest checkpoint is step {newest}" in last


def test_skip_nonfinite_skips_that_many_steps_then_stops(tmp_path, capsys):
  config = load_config()
  config.train.update(steps=30, learning_rate=1e30, checkpoint_every=2, log_every=1,
                      eval_every=0, skip_nonfinite=3)
  with pytest.raises(Diverged) as e:
    run_on_one_device(config, tmp_path)
  bad_step = int(str(e.value).split(" at step ")[1].split(":")[0])
  out = capsys.readouterr().out
  assert [f"step {bad_step - k}:" in out for k in (3, 2, 1)] == [True] * 3
  assert "update skipped (3 of train.skip_nonfinite=3)" in out
  logged = (tmp_path / "metrics.jsonl").read_text()
  assert '"train/loss"' in logged
  saved = finite_checkpoints(tmp_path)
  assert saved and all(saved.values()) and max(saved) < bad_step
  # Steps bad_step-3 .. bad_step-1 were skipped: no update, so every checkpoint from the step
  # before them on holds the same (finite) parameters; the fourth bad step stopped the run.
  same = [s for s in saved if bad_step - 4 <= s < bad_step]
  assert len(same) >= 2
  params = [jax.tree.leaves(rf_jax.load(str(tmp_path), step=s, devices=jax.devices()[:1]).run.params)
            for s in same]
  for other in params[1:]:
    for a, b in zip(params[0], other):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
