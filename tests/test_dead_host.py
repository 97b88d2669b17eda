"""A dead host does not hang the job: in a 2-process jax.distributed run on localhost, SIGKILL
one process (mid-training, or during an async save); the other exits non-zero within a bounded
time with a line naming the lost process, and restarting both resumes from the last checkpoint."""
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT
from test_multiprocess import env, free_port

pytestmark = pytest.mark.slow

TIMEOUT_S = 5  # --peer_timeout_s; the watch reports within it + its beat interval + 1 s
BOUND_S = TIMEOUT_S + TIMEOUT_S / 4 + 1
ARGS = ["--config=configs/phase1.py:tiny", "--config.mesh.shape=(4,1,1)",
        "--config.train.log_every=1", "--config.train.eval_every=0", f"--peer_timeout_s={TIMEOUT_S}"]


def start(work, steps, every, logs):
  port = free_port()
  return [subprocess.Popen(
      [sys.executable, "-m", "rf_jax.main", *ARGS, f"--config.train.steps={steps}",
       f"--config.train.checkpoint_every={every}", f"--workdir={work}",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
      cwd=ROOT, env=env(2), stdout=log, stderr=subprocess.STDOUT, text=True)
      for i, log in enumerate(logs)]


def committed(work) -> list[int]:
  d = work / "checkpoints"
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if d.exists() else []


def saving(work) -> bool:
  d = work / "checkpoints"
  return d.exists() and any(".orbax-checkpoint-tmp" in n for n in os.listdir(d))


def kill_and_time_the_other(procs, victim, when, timeout=240) -> tuple[int, float]:
  t = time.time()
  while not when():
    assert all(p.poll() is None for p in procs), "a process ended before the kill"
    assert time.time() - t < timeout, "timed out waiting for the moment to kill"
    time.sleep(0.002)
  procs[victim].send_signal(signal.SIGKILL)
  killed = time.time()
  rc = procs[1 - victim].wait(timeout=120)  # without the watch: JAX's 100 s heartbeat or a hang
  procs[victim].wait()
  return rc, time.time() - killed


def resume_both(tmp_path, work, steps) -> list[str]:
  logs = [open(tmp_path / f"resume{i}.log", "w") for i in range(2)]
  procs = start(work, steps, 100, logs)
  rcs = [p.wait(timeout=300) for p in procs]
  outs = [(tmp_path / f"resume{i}.log").read_text() for i in range(2)]
  assert rcs == [0, 0], outs[0][-3000:] + outs[1][-3000:]
  return outs


@pytest.mark.parametrize("moment", ["mid_training", "during_async_save"])
def test_killed_process_stops_its_peer_and_both_resume(tmp_path, moment):
  work = tmp_path / "w"
  logs = [open(tmp_path / f"run{i}.log", "w") for i in range(2)]
  every = 5 if moment == "mid_training" else 2
  procs = start(work, 10_000, every, logs)
  when = ((lambda: len(committed(work)) >= 2) if moment == "mid_training" else
          (lambda: len(committed(work)) >= 1 and saving(work)))
  rc, took = kill_and_time_the_other(procs, 1, when)
  out = (tmp_path / "run0.log").read_text()
  assert rc != 0 and took < BOUND_S + 5, (rc, took, out[-3000:])  # + slack for a busy machine
  assert out.strip().splitlines()[-1] == (
      f"error: process 1 of 2 stopped responding {TIMEOUT_S} s ago (its host died or it was "
      "killed); process 0 stops too. Restart every process with the same command: the run "
      "resumes from its last checkpoint")
  last = committed(work)[-1]
  outs = resume_both(tmp_path, work, last + 2)
  assert f"resumed from step {last}" in outs[0] and f"done at step {last + 2}" in outs[0]


def test_killed_coordinator_stops_its_peer(tmp_path):
  """Process 0 hosts JAX's coordination service: its peer's JAX client aborts at once, with a
  line that names the leader task, before the watch's timeout."""
  work = tmp_path / "w"
  logs = [open(tmp_path / f"run{i}.log", "w") for i in range(2)]
  procs = start(work, 10_000, 5, logs)
  rc, took = kill_and_time_the_other(procs, 0, lambda: len(committed(work)) >= 1)
  out = (tmp_path / "run1.log").read_text()
  assert rc != 0 and took < BOUND_S + 5, (rc, took, out[-3000:])
  assert ("Either the leader task was preempted/died/restarted unexpectedly" in out or
          "error: the coordinator, process 0 of 2, stopped responding" in out), out[-3000:]
