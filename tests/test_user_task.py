"""A task written outside the package, named in the config, trains and is evaluated."""
import json

import jax
import pytest

from rf_jax import sharding, train

from helpers import doubling_task_source, load_config

pytestmark = pytest.mark.slow


def test_user_task_file_trains_and_evaluates(tmp_path, monkeypatch):
  path = tmp_path / "my_tasks.py"
  path.write_text(doubling_task_source("double"))
  config = load_config()
  config.data.update(task_modules=(str(path),), tasks=("copy", "double"))
  config.train.update(steps=10, eval_every=0, eval_levels=(1, 3), checkpoint_every=0)
  config.mesh.shape = (1, 1, 1)
  real = sharding.make_mesh
  monkeypatch.setattr(train, "make_mesh", lambda shape: real(shape, jax.devices()[:1]))
  monkeypatch.chdir(tmp_path)
  final = train.run(config, "w")  # relative, like the CLI's default workdir
  assert {"eval/double/L1/exact", "eval/double/L3/score", "eval/copy/L1/exact"} <= set(final)
  assert 0.0 <= final["eval/double/L3/score"] <= 1.0
  saved = json.loads((tmp_path / "w" / "final_metrics.json").read_text())
  assert saved["step"] == 10
  # The evaluator finds the task through the run's saved config, too.
  from rf_jax import evaluate
  assert evaluate.main(["--workdir=w", "--examples=2"]) == 0
  report = json.loads((tmp_path / "w" / "eval" / "step_10.json").read_text())
  assert set(report["families"]["double"]["levels"]) == {"1", "2", "3"}
