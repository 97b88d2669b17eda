"""Orbax checkpoints: restore onto other meshes, fall back past a truncated one, refuse a mismatch."""
import os
import pathlib

import jax
import numpy as np
import pytest

from rf_jax import train
from rf_jax.checkpoint import Checkpointer
from rf_jax.errors import ConfigError
from rf_jax.train_state import mesh_rules, model_config
from rf_jax.train_state import abstract_model, abstract_state, init_state, make_optimizer, make_schedule
from rf_jax.vocab import phase1_vocab

from helpers import load_config, mesh_of, run_on_one_device


def state_on(shape, config):
  mesh, rules = mesh_of(shape), mesh_rules(config)
  mcfg = model_config(config, phase1_vocab())
  tx = make_optimizer(make_schedule(1e-3, 1, 10), 0.1, 0.9, 0.98, 1.0)
  _, abs_params = abstract_model(mcfg, mesh, rules)
  return mesh, tx, abstract_state(abs_params, tx, mesh), lambda: init_state(mcfg, tx, mesh, rules, 3)


def test_checkpoint_from_222_restores_on_111_and_811(tmp_path):
  config = load_config()
  config.model.update(d_model=64, n_heads=4, mlp_dim=128)
  _, _, _, init = state_on((2, 2, 2), config)
  saved = init()
  ckpt = Checkpointer(str(tmp_path), keep=2)
  ckpt.save(5, saved, None, {"note": "x"})
  ckpt.close()
  expected = jax.tree.map(np.asarray, saved)
  for shape in [(1, 1, 1), (8, 1, 1)]:
    mesh, _, abs_state, _ = state_on(shape, config)
    step, restored, meta = Checkpointer(str(tmp_path), keep=2).restore_latest(abs_state, None)
    assert step == 5 and meta == {"note": "x"}
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
      np.testing.assert_array_equal(np.asarray(a), b)
    leaf = restored["params"]["embed"]
    assert leaf.sharding.mesh.shape == mesh.shape


def tiny_config(steps):
  config = load_config()
  config.train.update(steps=steps, checkpoint_every=10, eval_every=0, eval_levels=(), log_every=5)
  config.mesh.shape = (1, 1, 1)
  return config


def run_tiny(workdir, steps):
  # One device: the fake 8 would each get one row.
  return run_on_one_device(tiny_config(steps), workdir)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate_files", "remove_state"])
def test_truncated_checkpoint_falls_back_and_keeps_files(tmp_path, damage):
  run_tiny(tmp_path, 20)
  ckdir = tmp_path / "checkpoints"
  assert sorted(os.listdir(ckdir)) == ["10", "20"]
  state_dir = ckdir / "20" / "state"
  if damage == "truncate_files":
    for f in state_dir.rglob("*"):
      if f.is_file() and "d" in f.parts[-2:-1]:
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 3])
  else:
    import shutil
    shutil.rmtree(state_dir)
  before_10 = sorted(str(p.relative_to(ckdir)) for p in (ckdir / "10").rglob("*"))
  run_tiny(tmp_path, 30)
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  steps = [int(l.split('"step": ')[1].split(",")[0]) for l in lines]
  assert steps == [5, 10, 15, 20] + [15, 20, 25, 30]  # resumed from 10, not 20
  aside = list((tmp_path / "corrupt_checkpoints").iterdir())
  assert len(aside) == 1 and aside[0].name.startswith("20-")
  assert (aside[0] / "_CHECKPOINT_METADATA").exists()  # moved, not deleted
  assert sorted(os.listdir(ckdir)) == ["10", "20", "30"]
  after_10 = sorted(str(p.relative_to(ckdir)) for p in (ckdir / "10").rglob("*"))
  assert after_10 == before_10


def test_shape_mismatch_on_restore_is_a_config_error(tmp_path):
  run_tiny(tmp_path, 10)
  config = tiny_config(20)
  config.model.d_model = 64
  mesh, _, abs_state, _ = state_on((1, 1, 1), config)
  with pytest.raises(ConfigError, match="does not match the configured model"):
    Checkpointer(str(tmp_path), keep=2).restore_latest(abs_state, None)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10"]
