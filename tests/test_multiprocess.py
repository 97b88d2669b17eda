"""Two real processes on localhost (jax.distributed, 2 fake CPU devices each) train like one."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow

ARGS = ["--config=configs/phase1.py:tiny", "--config.mesh.shape=(4,1,1)",
        "--config.train.log_every=1", "--config.train.eval_every=0",
        "--config.train.checkpoint_every=0"]


def env(devices):
  return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
              PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def losses(workdir):
  out = {}
  for line in (workdir / "metrics.jsonl").read_text().splitlines():
    r = json.loads(line)
    if "train/loss" in r:
      out[r["step"]] = r["train/loss"]
  return out


def test_two_processes_match_one_and_hand_over_the_checkpoint(tmp_path):
  port = free_port()
  work = tmp_path / "multi"
  procs = [subprocess.Popen(
      [sys.executable, "-m", "rf_jax.main", *ARGS, "--config.train.steps=5", f"--workdir={work}",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
      cwd=ROOT, env=env(2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  assert "2 process(es)" in outs[0]
  assert not outs[1].strip().count("step 5/5")  # only process 0 logs
  single = tmp_path / "single"
  r = subprocess.run([sys.executable, "-m", "rf_jax.main", *ARGS, "--config.train.steps=5",
                      f"--workdir={single}"], cwd=ROOT, env=env(4), capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  a, b = losses(work), losses(single)
  assert sorted(a) == [1, 2, 3, 4, 5]
  np.testing.assert_allclose([a[s] for s in range(1, 6)], [b[s] for s in range(1, 6)],
                             atol=1e-5, rtol=0)
  assert sorted(os.listdir(work / "checkpoints")) == ["5"]
  # the final greedy evaluation ran across both processes and scored what one process scores
  evals = [{k: v for k, v in json.loads((w / "final_metrics.json").read_text()).items()
            if k.startswith("eval/")} for w in (work, single)]
  assert any(k.endswith("/exact") for k in evals[0]) and evals[0] == evals[1]
  # one process, 4 devices, picks up the 2-process checkpoint and continues
  r = subprocess.run([sys.executable, "-m", "rf_jax.main", *ARGS, "--config.train.steps=8",
                      f"--workdir={work}"], cwd=ROOT, env=env(4), capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "resumed from step 5" in r.stdout and "done at step 8" in r.stdout
