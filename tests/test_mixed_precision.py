"""Mixed precision (model.dtype=bfloat16): bf16 activations and matmuls; f32 parameters,
gradients, optimizer state, logits and loss; and a short bf16 run tracks the f32 one."""
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rf_jax import bench
from rf_jax.step import train_step
from tests.helpers import load_config, run_on_one_device

# A bf16 run's loss stays within this fraction of the f32 run's at each of its first 20
# steps (the tiny preset on CPU, jax 0.10.2: at most 0.018%; a bf16 number holds ~0.4%).
LOSS_TOLERANCE = 0.005


def bf16_config():
  c = load_config()
  c.model.dtype = "bfloat16"
  return c


def test_bf16_computes_in_bf16_and_keeps_state_and_loss_in_f32():
  s = bench.Setup(bf16_config())
  state, batch = s.state(), s.batch()
  floats = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
  assert floats and all(x.dtype == jnp.float32 for x in floats)  # params and adam moments
  step = functools.partial(train_step, graphdef=s.graphdef, tx=s.tx, schedule=s.schedule)
  with jax.set_mesh(s.mesh):
    jaxpr = jax.make_jaxpr(step)(state, batch)
    new_state, metrics = jax.jit(step)(state, batch)
  dots = [e for e in _all_eqns(jaxpr.jaxpr) if e.primitive.name == "dot_general"]
  operand_types = {tuple(str(v.aval.dtype) for v in e.invars) for e in dots}
  assert ("bfloat16", "bfloat16") in operand_types  # the matmuls run in bf16
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new_state["params"]))
  assert metrics["loss"].dtype == jnp.float32 and metrics["grad_norm"].dtype == jnp.float32


def _all_eqns(jaxpr):
  """Every equation of a jaxpr and of the jaxprs nested in it (jit, scan, custom_vjp)."""
  for e in jaxpr.eqns:
    yield e
    for p in e.params.values():
      for sub in (p if isinstance(p, (list, tuple)) else [p]):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _all_eqns(inner)


def losses(config, workdir):
  config.train.update(steps=20, log_every=1, eval_every=0, checkpoint_every=0, eval_levels=())
  run_on_one_device(config, workdir)
  return [json.loads(line)["train/loss"] for line in open(workdir / "metrics.jsonl")
          if "train/loss" in line]


@pytest.mark.slow  # two training runs
def test_a_bf16_run_tracks_the_f32_run(tmp_path):
  f32 = losses(load_config(), tmp_path / "f32")
  bf16 = losses(bf16_config(), tmp_path / "bf16")
  assert len(f32) == len(bf16) == 20 and f32[-1] < f32[0] - 0.5  # it learns
  relative = np.abs(np.array(bf16) - np.array(f32)) / np.array(f32)
  assert relative.max() < LOSS_TOLERANCE, relative
  assert bf16 != f32  # it did compute in bf16
