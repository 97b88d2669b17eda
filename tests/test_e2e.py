"""The real CLI: learning, SIGKILL + resume equals an uninterrupted run, SIGTERM, bad input."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT

TINY = ["--config=configs/phase1.py:tiny", "--config.mesh.shape=(1,1,1)"]


def cli_env(devices=1):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def cli(args, devices=1, **kw):
  return subprocess.run([sys.executable, "-m", "rf_jax.main", *args], cwd=ROOT, env=cli_env(devices),
                        capture_output=True, text=True, timeout=300, **kw)


def start_cli(args, log):
  return subprocess.Popen([sys.executable, "-m", "rf_jax.main", *args], cwd=ROOT, env=cli_env(),
                          stdout=log, stderr=subprocess.STDOUT, text=True)


def losses(workdir) -> dict[int, float]:
  out = {}  # later lines win: a killed run may have logged steps it never saved
  for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines():
    rec = json.loads(line)
    if "train/loss" in rec:
      out[rec["step"]] = rec["train/loss"]
  return out


def wait_for(predicate, proc, timeout=180):
  t = time.time()
  while not predicate():
    assert proc.poll() is None, "run ended before the condition held"
    assert time.time() - t < timeout, "timed out"
    time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
  # Eval every step slows the run so the kill lands mid-run; eval never touches training state.
  args = TINY + ["--config.train.steps=40", "--config.train.log_every=1",
                 "--config.train.checkpoint_every=10", "--config.train.eval_every=1"]
  ref = cli(args + [f"--workdir={tmp_path / 'ref'}"])
  assert ref.returncode == 0, ref.stderr[-2000:]
  work = tmp_path / "killed"
  with open(tmp_path / "log1", "w") as log:
    proc = start_cli(args + [f"--workdir={work}"], log)
    wait_for(lambda: (work / "checkpoints" / "10" / "commit_success.txt").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  resumed = cli(args + [f"--workdir={work}"])
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "resumed from" in resumed.stdout
  start = int(resumed.stdout.split("resumed from step ")[1].split()[0])
  assert 10 <= start < 40
  want, got = losses(tmp_path / "ref"), losses(work)
  after = [s for s in range(start + 1, 41)]
  assert [got[s] for s in after] == [want[s] for s in after]  # exact, not approximate
  assert want[40] < want[1]


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path):
  args = TINY + ["--config.train.steps=100000", "--config.train.checkpoint_every=50",
                 f"--workdir={tmp_path}"]
  with open(tmp_path / "log", "w") as log:
    proc = start_cli(args, log)
    wait_for(lambda: (tmp_path / "checkpoints" / "50" / "commit_success.txt").exists(), proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
  out = (tmp_path / "log").read_text()
  assert "SIGTERM: saving step" in out
  stopped = int(out.split("SIGTERM: saving step ")[1].split()[0])
  assert stopped > 50
  assert (tmp_path / "checkpoints" / str(stopped) / "commit_success.txt").exists()


@pytest.mark.parametrize("extra, message", [
    (["--config.data.tasks=copy,nope"], "unknown task 'nope'"),
    (["--config.mesh.shape=(3,1,1)"], "mesh.shape (3, 1, 1) needs 3 devices but 2 are available"),
    (["--config.mesh.shape=(2,1,1)", "--config.train.batch_size=7"],
     "train.batch_size=7 is not divisible by the data-parallel size 2"),
    (["--workdir=UNDER_A_FILE"], "is not writable"),
    (["--config=configs/phase9.py"], "config file configs/phase9.py not found"),
    (["--config.objective.kind=ppo"], "unknown objective 'ppo'; known: next_token, rl"),
    (["--config.train.stepz=50"], "unknown config field train.stepz; did you mean train.steps?"),
    (["--config.trian.steps=50"], "unknown config field trian; did you mean train?"),
    (["--config=configs/nope.py"], "config file configs/nope.py not found"),
    (["--config=configs/phase1.py:huge"], "unknown preset 'huge' for configs/phase1.py; use tiny"),
    (["--config.data.task_modules=TMP/syntax_task.py"],
     "data.task_modules: syntax error in TMP/syntax_task.py line 3: "),
    (["--config.model.n_heads=3"], "model.d_model=32 must be divisible by model.n_heads=3"),
    (["--config.data.task_modules=TMP/euro_task.py", "--config.data.tasks=copy,euro"],
     "task 'euro' at level 1: character '€' is not in the vocabulary"),
    (["--config.train.steps=-5"], "train.steps=-5 must be a positive number of steps"),
])
def test_bad_input_gives_one_line_error(tmp_path, extra, message):
  (tmp_path / "a_file").write_text("")
  (tmp_path / "syntax_task.py").write_text("from rf_jax.tasks import Task\n\ndef broken(:\n")
  (tmp_path / "euro_task.py").write_text(EURO_TASK)
  extra = [e.replace("UNDER_A_FILE", str(tmp_path / "a_file" / "w")).replace("TMP", str(tmp_path))
           for e in extra]
  message = message.replace("TMP", str(tmp_path))
  args = ["--config=configs/phase1.py:tiny", f"--workdir={tmp_path / 'w'}"] + extra
  r = cli(args, devices=2)
  assert r.returncode != 0
  assert "Traceback" not in r.stderr + r.stdout
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and message in last, r.stderr[-1500:]
  assert not (tmp_path / "w" / "checkpoints").exists()  # refused before anything was saved
  if "train.steps" in message:
    assert not (tmp_path / "w").exists()  # nor an empty run left behind


EURO_TASK = '''
from rf_jax.tasks import Example, Task, register


@register
class Euro(Task):
  """Prices in euros: a character the phase-1 vocabulary does not have."""
  name = "euro"
  max_level = 2

  def generate(self, rng, level):
    return Example(prompt="eur:" + "1" * level, answer="€" * level)
'''
