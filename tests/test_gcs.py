"""Every path that accepts gs:// runs end to end against a local GCS emulator: a run's
checkpoints, metrics and resume; rf_jax.load; the evaluator's reports; init_from; text files;
memory banks; the pipeline's root (the thesis's root: tests/test_thesis.py)."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from etils import epath

import rf_jax

from gcs_emulator import emulator
from helpers import ROOT

pytestmark = pytest.mark.slow

TINY = ["--config=configs/phase1.py:tiny", "--config.mesh.shape=(1,1,1)",
        "--config.train.eval_every=0"]


def run(module, *args):
  r = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                     text=True, timeout=600, env=dict(
                         os.environ, PYTHONPATH=ROOT,
                         XLA_FLAGS="--xla_force_host_platform_device_count=1"))
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  return r.stdout


def read_json(path):
  return json.loads(epath.Path(path).read_text())


@pytest.fixture(scope="module")
def bucket():
  with emulator() as url:
    yield url


@pytest.fixture(scope="module")
def phase1(bucket):
  """A phase-1 run on gs://: 10 steps, then resumed to 15."""
  work = f"{bucket}/runs/phase1"
  run("rf_jax.main", *TINY, "--config.train.steps=10", "--config.train.checkpoint_every=5",
      f"--workdir={work}")
  out = run("rf_jax.main", *TINY, "--config.train.steps=15", "--config.train.checkpoint_every=5",
            f"--workdir={work}")
  assert "resumed from step 10" in out and "done at step 15" in out
  return work


def test_a_run_checkpoints_logs_and_resumes_on_gcs(phase1):
  steps = sorted(int(p.name) for p in epath.Path(phase1, "checkpoints").iterdir()
                 if p.name.isdigit())
  assert steps == [5, 10, 15]
  assert read_json(f"{phase1}/final_metrics.json")["step"] == 15
  logged = [json.loads(l)["step"] for l in
            epath.Path(phase1, "metrics.jsonl").read_text().splitlines()]
  assert logged[0] == 5 and logged[-1] == 15  # the resumed run appended to the first one's log
  assert any(p.name.startswith("events.out.tfevents") for p in epath.Path(phase1).iterdir())


def test_load_and_evaluate_a_run_on_gcs(phase1):
  model = rf_jax.load(phase1, devices=jax.devices()[:1])
  assert model.step == 15 and len(model.generate(["copy:ab"], max_new=4)) == 1
  run("rf_jax.evaluate", f"--workdir={phase1}", "--examples=2", "--probes=levels")
  report = read_json(f"{phase1}/eval/step_15.json")
  assert report["step"] == 15 and report["families"]
  assert epath.Path(phase1, "eval", "step_15.png").stat().length > 1000


CORPUS = ("The river runs past the mill and the mill turns the stone. " * 40,
          "A small reasoner reads facts from a bank it has never seen. " * 40,
          "Counting sheep: one, two, three, four, five, six, seven. " * 40)


def test_init_from_and_text_files_on_gcs(bucket, phase1):
  for i, text in enumerate(CORPUS):
    epath.Path(f"{bucket}/corpus/part{i}.txt").write_text(text)
  work = f"{bucket}/runs/phase3"
  out = run("rf_jax.main", "--config=configs/phase3.py:tiny", "--config.mesh.shape=(1,1,1)",
            f"--config.init_from={phase1}", f"--config.data.text_files={bucket}/corpus/*.txt",
            "--config.train.steps=4", "--config.train.checkpoint_every=0", f"--workdir={work}")
  assert f"initialised from {phase1} step 15" in out
  final = read_json(f"{work}/final_metrics.json")
  assert final["step"] == 4 and np.isfinite(final["val/bits_per_byte"])
  lineage = read_json(f"{work}/checkpoints/4/meta/metadata")["lineage"]
  assert lineage[-1]["workdir"] == phase1


def test_memory_bank_saves_and_loads_on_gcs(bucket):
  from rf_jax import memory
  from rf_jax.sharding import make_mesh
  rng = np.random.default_rng(0)
  keys, chunks = rng.normal(size=(10, 4)).astype(np.float32), rng.integers(0, 9, (10, 3))
  path = f"{bucket}/banks/b0"
  memory.save(path, keys, chunks, source="test")
  memory.save(path, keys * 2, chunks, source="test")  # a rewrite replaces it whole
  bank = memory.load(path, make_mesh((1, 1, 1), jax.devices()[:1]), dim=4)
  assert bank.manifest["source"] == "test" and bank.size == 10
  np.testing.assert_array_equal(np.asarray(bank.keys)[:10], keys * 2)
  np.testing.assert_array_equal(bank.chunks, chunks)


def test_pipeline_root_on_gcs(bucket):
  root = f"{bucket}/pipeline"
  out = run("rf_jax.pipeline", "--preset=tiny", f"--root={root}", "--only=phase1")
  step = read_json(f"{root}/phase1/final_metrics.json")["step"]
  assert f"done at step {step}" in out
  assert epath.Path(root, "report.md").read_text() and read_json(f"{root}/report.json")
  again = run("rf_jax.pipeline", "--preset=tiny", f"--root={root}", "--only=phase1")
  assert f"workdir already at step {step}" in again  # the finished run on gs:// is found
