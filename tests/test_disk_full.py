"""A save that runs out of disk space (a real, size-limited tmpfs) stops the run with one line
saying how much a checkpoint needs; every earlier checkpoint stays intact and resumes."""
import logging
import os
import re
import subprocess
import sys

import jax
import pytest

import rf_jax

from helpers import ROOT

pytestmark = pytest.mark.slow

ARGS = ["--config=configs/phase1.py:tiny", "--config.mesh.shape=(1,1,1)",
        "--config.train.steps=30", "--config.train.checkpoint_every=5"]


@pytest.fixture
def small_disk(tmp_path):
  """A 1.1 MB tmpfs: room for the run's logs and two checkpoints of the tiny model, not three."""
  disk = tmp_path / "disk"
  disk.mkdir()
  r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1100k", "tmpfs", str(disk)],
                     capture_output=True, text=True)
  if r.returncode:
    pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {r.stderr.strip()}")
  yield disk
  subprocess.run(["umount", str(disk)], check=True)


def cli(workdir):
  return subprocess.run([sys.executable, "-m", "rf_jax.main", *ARGS, f"--workdir={workdir}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, PYTHONPATH=ROOT,
                                 XLA_FLAGS="--xla_force_host_platform_device_count=1"))


def test_full_disk_stops_with_one_line_and_loses_nothing(small_disk):
  work = small_disk / "w"
  r = cli(work)
  assert r.returncode != 0
  last = r.stderr.strip().splitlines()[-1]
  m = re.match(r"error: no space left on device saving checkpoint step (\d+) in \S+: a checkpoint "
               r"needs about ([\d.]+) MiB and ([\d.]+) MiB is free", last)
  assert m, r.stderr[-3000:]
  failed, need, free = int(m[1]), float(m[2]), float(m[3])
  assert need > 0.1 and free < need
  assert "RESOURCE_EXHAUSTED" not in r.stderr  # Orbax's per-thread error logs are not shown
  assert "Traceback" not in r.stderr
  # the failed save's partial folder is gone; the earlier checkpoints are all there and load
  names = sorted(os.listdir(work / "checkpoints"))
  steps = sorted(int(n) for n in names)
  assert len(names) == len(steps) and steps == list(range(5, failed, 5)) and len(steps) >= 2
  assert f"checkpoints {', '.join(map(str, steps))} are intact" in last
  for s in steps:
    assert rf_jax.load(str(work), step=s, devices=jax.devices()[:1]).step == s
  # with space again, the same command resumes from the newest of them and finishes
  subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
  r = cli(work)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"resumed from step {steps[-1]}" in r.stdout and "done at step 30" in r.stdout


def test_late_asyncio_reports_of_a_full_disk_are_dropped(tmp_path, caplog):
  """Orbax's writer tasks that failed for lack of space may be collected after the one-line
  stop; asyncio then logs "Task exception was never retrieved" with their traceback."""
  from rf_jax.checkpoint import Checkpointer
  Checkpointer(str(tmp_path / "w"), keep=1, async_save=False)
  full = ValueError("RESOURCE_EXHAUSTED: Failed to write 36236 bytes to file 8: "
                    "No space left on device [os_error_code='28']")
  other = ValueError("something else went wrong")
  with caplog.at_level("ERROR", logger="asyncio"):
    for error in (full, other):
      logging.getLogger("asyncio").error("Task exception was never retrieved\nfuture: <Task %r>",
                                         error, exc_info=(type(error), error, None))
  assert [r.exc_info[1] for r in caplog.records] == [other]
