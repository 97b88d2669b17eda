"""rf_jax.load: a checkpoint written on 8 devices reloads on 1 and decodes the same tokens."""
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import rf_jax
from rf_jax.errors import ConfigError

from helpers import ROOT, doubling_task_source

pytestmark = pytest.mark.slow  # every test needs a run trained in a subprocess


@pytest.fixture(scope="module")
def run_8dev(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("api") / "w"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             PYTHONPATH=ROOT)
  r = subprocess.run([sys.executable, "-m", "rf_jax.main", "--config=configs/phase1.py:tiny",
                      "--config.mesh.shape=(2,2,2)", "--config.train.steps=30",
                      f"--workdir={workdir}"], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  return workdir


def test_reload_on_one_device_decodes_like_training(run_8dev):
  model = rf_jax.load(str(run_8dev), devices=jax.devices()[:1])
  assert model.step == 30 and len(model.run.mesh.devices.flat) == 1
  samples = json.loads((run_8dev / "final_samples.json").read_text())
  by_task = {}
  for s in samples:
    by_task.setdefault((s["task"], s["level"]), []).append(s)
  for (task, level), rows in by_task.items():
    got = model.score_task(task, level, n=len(rows))
    assert [e["output"] for e in got["examples"]] == [r["output"] for r in rows]
    assert [e["prompt"] for e in got["examples"]] == [r["prompt"] for r in rows]
  # generate() pads differently; the greedy answers are the same
  rows = samples[:6]
  assert model.generate([r["prompt"] for r in rows], max_new=16) == [r["output"] for r in rows]
  # a step folder works as the path, too
  assert rf_jax.load(str(run_8dev / "checkpoints" / "30"), devices=jax.devices()[:1]).step == 30


def test_inspect_shapes_and_logit_lens(run_8dev):
  model = rf_jax.load(str(run_8dev), devices=jax.devices()[:1])
  out = model.inspect("dyck:(([")
  L, T = model.config.model.n_layers, len(out["tokens"])
  assert out["tokens"][0] == "<bos>" and out["tokens"][-1] == "<sep>"
  assert out["hidden"].shape == (L + 1, T, model.config.model.d_model)
  assert out["attention"].shape == (L, model.config.model.n_heads, T, T)
  np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-5)
  assert np.allclose(np.triu(out["attention"][0, 0], 1), 0)  # causal
  np.testing.assert_allclose(out["logit_lens"][-1], out["logits"], atol=1e-4)


def test_bad_paths(run_8dev, tmp_path):
  with pytest.raises(ConfigError, match="no checkpoints under"):
    rf_jax.load(str(tmp_path / "nowhere"))
  broken = tmp_path / "novocab"
  shutil.copytree(run_8dev, broken)
  meta_path = broken / "checkpoints" / "30" / "meta" / "metadata"
  meta = json.loads(meta_path.read_text())
  del meta["vocab"]
  meta_path.write_text(json.dumps(meta))
  with pytest.raises(ConfigError, match="lacks 'vocab'"):
    rf_jax.load(str(broken))


SCORE = """
import sys, rf_jax
from rf_jax.errors import ConfigError
try:
  r = rf_jax.load(sys.argv[1]).score_task("doubled", level=2, n=4)
  print("scored", r["task"], r["n"], len(r["examples"]))
except ConfigError as e:
  print("error:", e)
"""


def test_load_imports_the_runs_own_task_files(tmp_path):
  from helpers import load_config, run_on_one_device
  task_file = tmp_path / "double_tasks.py"
  task_file.write_text(doubling_task_source("doubled"))
  config = load_config()
  config.data.update(task_modules=(str(task_file),), tasks=("copy", "doubled"))
  config.train.update(steps=2, eval_every=0, eval_levels=(), checkpoint_every=0)
  run_on_one_device(config, tmp_path / "w")

  def score():  # a fresh process: nothing registered but what load imports
    r = subprocess.run([sys.executable, "-c", SCORE, str(tmp_path / "w")], cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1]

  assert score() == "scored doubled 4 4"
  task_file.rename(tmp_path / "moved.py")
  assert score() == (f"error: data.task_modules of the run in {tmp_path / 'w'}: "
                     f"file {task_file} does not exist")
