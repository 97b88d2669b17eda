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


def test_io_finishing_after_its_event_loop_closed_is_not_reported(monkeypatch):
  """Orbax closes its event loop when a save or restore fails part-way; tensorstore I/O it
  started finishes later and its callback raises 'Event loop is closed' as an unraisable
  exception (seen at the test suite's teardown). rf_jax drops exactly that report; any other
  unraisable exception still reaches the hook that was there before."""
  import asyncio
  import gc
  import sys
  import time

  import tensorstore as ts

  from rf_jax import checkpoint

  seen = []
  monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
  checkpoint.drop_late_io_callbacks()
  checkpoint.drop_late_io_callbacks()  # once is enough: a second call wraps nothing more

  async def start_a_write():
    store = await ts.open({"driver": "zarr", "kvstore": "memory://late/", "metadata": {
        "shape": [1 << 20], "chunks": [1 << 10], "dtype": "<f4"}}, create=True)
    write = store.write(np.float32(1.0))

    async def wait():
      await write

    asyncio.ensure_future(wait())
    await asyncio.sleep(0)
    return write

  loop = asyncio.new_event_loop()
  write = loop.run_until_complete(start_a_write())  # returns with the write still running
  loop.close()
  t = time.time()
  while not write.done() and time.time() - t < 30:
    time.sleep(0.05)
  time.sleep(0.5)  # the completion callback runs just after

  class Other:
    def __del__(self):
      raise ValueError("an unrelated unraisable exception")

  Other()
  gc.collect()
  assert [type(e).__name__ for e in seen] == ["ValueError"], seen
