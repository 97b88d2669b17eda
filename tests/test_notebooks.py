"""Both notebooks run headless, top to bottom, against a checkpoint this test trains.

Cells tagged `colab` (the install cell) are skipped: the package is already installed here.
"""
import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import ROOT

pytestmark = pytest.mark.slow  # both notebooks need a run trained in a subprocess


def execute(name: str, env: dict, cwd):
  """Runs the notebook; returns it with its outputs."""
  book = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
  for cell in book.cells:
    assert not cell.get("outputs"), f"{name}: outputs must be cleared in the repository"
  book.cells = [c for c in book.cells if "colab" not in c.metadata.get("tags", [])]
  old = dict(os.environ)
  os.environ.update(env)  # the kernel inherits this process's environment
  # The python3 kernelspec runs `python` from PATH: make that this interpreter.
  os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
  os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
  try:
    NotebookClient(book, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
  finally:
    os.environ.clear()
    os.environ.update(old)
  return book


def printed(book) -> str:
  return "".join(o.get("text", "") for c in book.cells for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp("nb")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", PYTHONPATH=ROOT)
  workdir = root / "run"
  r = subprocess.run([sys.executable, "-m", "rf_jax.main", "--config=configs/phase1.py:tiny",
                      "--config.train.steps=150", "--config.model.d_model=64",
                      "--config.model.mlp_dim=128", "--config.data.levels=(1,3)",
                      "--config.train.eval_levels=(1,)", f"--workdir={workdir}"],
                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-2000:]
  r = subprocess.run([sys.executable, "-m", "rf_jax.evaluate", f"--workdir={workdir}",
                      "--examples=8"], cwd=ROOT, env=env, capture_output=True, text=True,
                     timeout=600)
  assert r.returncode == 0, r.stderr[-2000:]
  return root, workdir


def test_probe_notebook(trained):
  root, workdir = trained
  out = root / "probe_out"
  out.mkdir()
  execute("probe_checkpoint.ipynb", {"RF_JAX_CKPT": str(workdir), "RF_JAX_NOTEBOOK_OUT": str(out),
                                     "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}, root)
  for png in ("attention.png", "logit_lens.png", "probe.png"):
    assert (out / png).stat().st_size > 5_000, png
  probe = json.loads((out / "probe.json").read_text())
  # Stack depth is linearly readable well above the majority-class rate at some layer.
  assert max(probe["accuracy_per_layer"]) >= probe["chance"] + 0.15, probe


def test_compare_notebook(trained):
  root, workdir = trained
  out = root / "compare_out"
  out.mkdir()
  book = execute("compare_runs.ipynb", {"RF_JAX_RUNS": f"{workdir},{workdir}",
                                        "RF_JAX_NOTEBOOK_OUT": str(out)}, root)
  for png in ("compare_bars.png", "compare_panels.png"):
    assert (out / png).stat().st_size > 5_000, png
  text = printed(book)  # the esolang probes' metrics and panels, from the registry
  for shown in ("befunge ", "bf_write", "befunge_write", "write befunge_fib"):
    assert shown in text, shown
