"""rf_jax installed from a wheel (not editable) runs from a folder outside the checkout and
finds the configs it ships: the trainer, the pipeline and the thesis driver."""
import os
import pathlib
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """A folder holding rf_jax installed from a freshly built wheel, and a clean cwd."""
  tmp = tmp_path_factory.mktemp("install")
  wheels, site = tmp / "wheels", tmp / "site"
  run = lambda *a: subprocess.run([sys.executable, "-m", "pip", *a], check=True,
                                  capture_output=True, text=True, timeout=600)
  run("wheel", "--no-deps", "-q", "-w", str(wheels), ROOT)
  (wheel,) = wheels.glob("rf_jax-*.whl")
  run("install", "--no-deps", "-q", "--target", str(site), str(wheel))
  cwd = tmp / "elsewhere"
  cwd.mkdir()
  return site, cwd


def _run(installed, *args, timeout=600):
  site, cwd = installed
  # The installed copy comes first on the path, ahead of the checkout's editable install.
  env = {**os.environ, "PYTHONPATH": str(site), "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout)


def test_the_installed_package_is_the_one_that_runs(installed):
  out = _run(installed, "-c", "import rf_jax, rf_jax.config as c; print(rf_jax.__file__); "
                              "print(c.resolve('configs/phase1.py'))")
  assert out.returncode == 0, out.stderr
  module, config = out.stdout.split()
  site = str(installed[0])
  assert module.startswith(site) and config.startswith(site), out.stdout
  assert not pathlib.Path(installed[1], "configs").exists()


def test_main_runs_a_shipped_config(installed):
  out = _run(installed, "-m", "rf_jax.main", "--config=configs/phase1.py:tiny", "--workdir=w",
             "--config.train.steps=2", "--config.train.eval_levels=()",
             "--config.train.checkpoint_every=0")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "done at step 2" in out.stdout


def test_pipeline_and_thesis_find_their_configs(installed):
  out = _run(installed, "-m", "rf_jax.pipeline", "--preset=tiny", "--only=phase1", "--root=p",
             "--", "--config.train.steps=2", "--config.train.eval_levels=()")
  assert out.returncode == 0, out.stderr[-2000:]
  assert (installed[1] / "p" / "phase1" / "final_metrics.json").exists()
  out = _run(installed, "-m", "rf_jax.thesis", "--config=configs/thesis.py:tiny", "--dry-run",
             "--root=t")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "reasoning_first" in out.stdout
