"""Curricula: fixed, scheduled, adaptive; the adaptive state survives kill and resume."""
import json
import shutil

import jax
import numpy as np
import pytest

from rf_jax import sharding, train
from rf_jax.curriculum import Curriculum
from rf_jax.errors import ConfigError

from helpers import load_config


def counts(n_tasks, levels, per_task):
  """exact/count arrays with `per_task[i] = (level, exact, count)`."""
  exact, count = np.zeros((n_tasks, levels), int), np.zeros((n_tasks, levels), int)
  for i, (lvl, e, c) in enumerate(per_task):
    exact[i, lvl - 1], count[i, lvl - 1] = e, c
  return exact, count


def test_adaptive_raises_high_and_lowers_low():
  c = Curriculum(("easy", "hard"), 1, 4, kind="adaptive", min_examples=50, lag=3)
  c.history["hard"] = [(0, 3)]
  changes = c.update(10, *counts(2, 4, [(1, 50, 50), (3, 1, 60)]))  # forced high / low
  assert changes == {"easy": 2, "hard": 2}
  assert c.current("easy", 12) == 1 and c.current("easy", 13) == 2  # applies after the lag
  assert c.current("hard", 13) == 2
  # while a change is pending nothing more is decided
  assert c.update(11, *counts(2, 4, [(1, 50, 50), (3, 0, 60)])) == {}
  # bounds: never above hi or below lo
  c2 = Curriculum(("t",), 1, 2, kind="adaptive", min_examples=1, lag=0)
  for s in range(5):
    c2.update(s, *counts(1, 4, [(c2.current("t", s), 10, 10)]))
  assert c2.current("t", 10) == 2
  # too few examples: no decision
  c3 = Curriculum(("t",), 1, 4, kind="adaptive", min_examples=100)
  assert c3.update(0, *counts(1, 4, [(1, 10, 10)])) == {}


def test_scheduled_and_fixed_levels():
  s = Curriculum(("t",), 1, 4, kind="scheduled", total_steps=100, mix_lower=0.0)
  assert [s.current("t", x) for x in (0, 24, 25, 50, 99, 1000)] == [1, 1, 2, 3, 4, 4]
  rng = np.random.default_rng(0)
  mixed = Curriculum(("t",), 1, 4, kind="scheduled", total_steps=100, mix_lower=0.5)
  draws = [mixed.draw(rng, "t", 80) for _ in range(400)]
  assert set(draws) == {1, 2, 3, 4} and 0.35 < np.mean(np.array(draws) == 4) < 0.65
  f = Curriculum(("t",), 2, 3)
  assert set(f.draw(rng, "t", 0) for _ in range(100)) == {2, 3}
  with pytest.raises(ConfigError, match="curriculum.kind"):
    Curriculum(("t",), 1, 2, kind="nope")


def adaptive_config(steps):
  config = load_config()
  config.data.update(tasks=("copy", "parity"), levels=(1, 4))
  # raise_at=0: every family rises whenever it has min_examples, so levels move for sure
  config.curriculum.update(kind="adaptive", raise_at=0.0, lower_at=0.0, min_examples=40)
  config.train.update(steps=steps, checkpoint_every=15, eval_every=0, eval_levels=(),
                      log_every=1, learning_rate=1e-2)
  config.mesh.shape = (1, 1, 1)
  return config


def run(config, workdir, monkeypatch):
  real = sharding.make_mesh
  monkeypatch.setattr(train, "make_mesh", lambda shape: real(shape, jax.devices()[:1]))
  return train.run(config, str(workdir))


def levels_in(workdir):
  out = {}
  for line in (workdir / "metrics.jsonl").read_text().splitlines():
    r = json.loads(line)
    out[r["step"]] = (r["curriculum/copy"], r["curriculum/parity"], r["train/loss"])
  return out


@pytest.mark.slow
def test_adaptive_levels_survive_resume_exactly(tmp_path, monkeypatch):
  run(adaptive_config(40), tmp_path / "ref", monkeypatch)  # saves at 15 and 30
  ref = levels_in(tmp_path / "ref")
  assert max(v[0] for v in ref.values()) >= 2, "the curriculum never moved"
  # A run killed right after step 30: its workdir holds only checkpoint 30.
  (tmp_path / "cut" / "checkpoints").mkdir(parents=True)
  shutil.copytree(tmp_path / "ref" / "checkpoints" / "30", tmp_path / "cut" / "checkpoints" / "30")
  meta = json.loads((tmp_path / "cut" / "checkpoints" / "30" / "meta" / "metadata").read_text())
  assert meta["curriculum"]["history"]["copy"][-1][1] >= 2
  run(adaptive_config(40), tmp_path / "cut", monkeypatch)
  got = levels_in(tmp_path / "cut")
  assert sorted(got) == list(range(31, 41))
  assert [got[s] for s in range(31, 41)] == [ref[s] for s in range(31, 41)]  # levels and losses
