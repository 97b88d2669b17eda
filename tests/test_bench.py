"""The benchmark's hand-written floor computes the trainer's loss and gradients (same model)."""
import jax
import numpy as np
import pytest

from rf_jax import bench, config as config_lib
from rf_jax.step import loss_fn
from tests.helpers import ROOT


# auto's blocked kernel, one product, the window kernel, a configured kernel, scanned layers
@pytest.mark.parametrize("block,window,kernel,scan", [
    (16, 0, "auto", False), (0, 0, "auto", False), (16, 16, "auto", False),
    (16, 0, "dot_product", False), (16, 16, "dot_product", True)])
def test_handwritten_floor_is_the_trainers_model(block, window, kernel, scan):
  config = config_lib.load(f"{ROOT}/configs/phase1.py:tiny")
  config.model.update(attention_block=block, attention_window=window, attention=kernel,
                      scan_layers=scan)
  s = bench.Setup(config)
  state, batch = s.state(), s.batch()
  with jax.set_mesh(s.mesh):
    mine, g_mine = jax.value_and_grad(lambda p: loss_fn(p, s.graphdef, batch)[0])(
        state["params"])
    floor, g_floor = jax.value_and_grad(bench.handwritten_loss)(state["params"], batch, s.mcfg)
  assert float(mine) > 1.0
  np.testing.assert_allclose(floor, mine, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(g_floor), jax.tree.leaves(g_mine)):
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("preset,lo,hi", [("bench", 24e6, 30e6), ("bench125m", 100e6, 130e6)])
def test_benchmark_presets_have_their_sizes(preset, lo, hi):
  from rf_jax.runs import abstract_model
  from rf_jax.sharding import make_mesh
  from rf_jax.train_state import mesh_rules, model_config
  from rf_jax.vocab import phase1_vocab
  config = config_lib.load(f"{ROOT}/configs/phase1.py:{preset}")
  mesh = make_mesh((-1, 1, 1))
  _, params = abstract_model(model_config(config, phase1_vocab()), mesh, mesh_rules(config))
  assert lo < sum(x.size for x in jax.tree.leaves(params)) < hi
  assert config.model.d_model // config.model.n_heads == 128


def test_rl_bench_compares_packed_and_shared_rows_with_the_padded_step():
  config = config_lib.load(f"{ROOT}/configs/phase1.py:tiny")
  config.mesh.shape = (1, 1, 1)
  config.rl.update(prompts=4, group_size=2)
  s = bench.Setup(config)
  arms = bench.bench_rl(s, peak=1e11, steps=2)
  assert list(arms) == ["padded", "packed", "shared prompts"]
  padded, packed, shared = arms["padded"], arms["packed"], arms["shared prompts"]
  assert packed["update_tokens"] < padded["update_tokens"]  # packing drops the padding
  assert shared["flops"] < packed["flops"]  # and sharing a group's prompt, its copies
  for x in arms.values():
    assert 0 < x["mfu"] and 0 < x["mfu_update"] and x["step_s"] > x["update_s"] > 0


def test_set_overrides_read_python_literals():
  assert bench.parse_set(["model.scan_layers=True", "model.attention=dot_product",
                          "mesh.shape=(1, 1, 1)", "train.steps=3"]) == {
      "model.scan_layers": True, "model.attention": "dot_product", "mesh.shape": (1, 1, 1),
      "train.steps": 3}


@pytest.mark.slow  # timed compiles, measured in CPU time so other processes matter less
def test_scanned_24_layers_compile_within_2x_of_4_layers():
  config = config_lib.load(f"{ROOT}/configs/phase1.py:tiny")
  cpu = {(r["layers"], r["scan"]): r["compile_cpu_s"] for r in bench.bench_layers(config)}
  assert cpu[(24, True)] < 2 * cpu[(4, True)], cpu
  assert cpu[(24, False)] > 1.5 * cpu[(4, False)], cpu  # unrolled grows with depth
