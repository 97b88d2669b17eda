import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rf_jax import layout
from rf_jax.model import REMAT_POLICIES, ModelConfig, Transformer, flops_per_token

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, mlp_dim=64)


def build(cfg, seed=0):
  # Plain, unsharded parameters: the trainer shards through jit out_shardings instead.
  with nnx.use_eager_sharding(False):
    return Transformer(cfg, nnx.Rngs(seed))


def run(cfg, tokens, positions=None, segments=None):
  model = build(cfg)
  B, T = tokens.shape
  positions = jnp.broadcast_to(jnp.arange(T), (B, T)) if positions is None else positions
  segments = jnp.ones((B, T), jnp.int32) if segments is None else segments
  return model(tokens, positions, segments)


def tokens(B=2, T=12, seed=0):
  return jax.random.randint(jax.random.key(seed), (B, T), 0, 64)


@pytest.mark.parametrize("position", ["rope", "none"])
def test_causal(position):
  cfg = dataclasses.replace(CFG, position=position)
  t = tokens()
  a = run(cfg, t)
  b = run(cfg, t.at[:, 8:].set(5))
  np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-6)
  assert not np.allclose(a[:, 8:], b[:, 8:])
  assert a.shape == (2, 12, 64) and a.dtype == jnp.float32


def test_packed_segments_equal_separate_rows():
  t = tokens(B=1, T=10)
  seg = jnp.array([[1] * 6 + [2] * 4])
  pos = jnp.array([list(range(6)) + list(range(4))])
  packed = run(CFG, t, pos, seg)
  first = run(CFG, t[:, :6])
  second = run(CFG, t[:, 6:])
  np.testing.assert_allclose(packed[:, :6], first, atol=1e-5)
  np.testing.assert_allclose(packed[:, 6:], second, atol=1e-5)


def test_sliding_window_limits_what_a_token_sees():
  cfg = dataclasses.replace(CFG, attention_window=3, n_layers=1)
  t = tokens(B=1, T=12)
  a = run(cfg, t)
  b = run(cfg, t.at[:, 0:5].set(7))  # token 8 sees only 6..8 (one layer)
  np.testing.assert_allclose(a[:, 8:], b[:, 8:], atol=1e-6)
  assert not np.allclose(a[:, 5:8], b[:, 5:8])


def test_remat_and_bf16_compute():
  t = tokens()
  a = run(CFG, t)
  np.testing.assert_allclose(run(dataclasses.replace(CFG, remat=True), t), a, atol=1e-6)
  b = run(dataclasses.replace(CFG, dtype="bfloat16"), t)
  assert b.dtype == jnp.float32 and np.abs(np.asarray(b) - np.asarray(a)).max() < 0.2


def test_every_param_has_logical_axes():
  model = nnx.eval_shape(lambda: build(CFG))
  params = nnx.state(model, nnx.Param)
  leaves = jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nnx.Variable))
  assert leaves
  for v in leaves:
    axes = v.get_metadata().get("out_sharding")
    assert axes is not None and len(axes) == v.shape.__len__(), v


def test_bad_model_config():
  with pytest.raises(ValueError, match="divisible"):
    dataclasses.replace(CFG, n_heads=5).validate()
  with pytest.raises(ValueError, match="position"):
    dataclasses.replace(CFG, position="alibi").validate()
  with pytest.raises(ValueError, match="model.remat_policy must be one of full, "):
    dataclasses.replace(CFG, remat=True, remat_policy="dots").validate()


def test_flops_window_aware():
  full = flops_per_token(CFG, 4096)
  windowed = flops_per_token(dataclasses.replace(CFG, attention_window=64), 4096)
  assert windowed < full
  assert flops_per_token(CFG, 8) > 6 * 2 * (4 * 32 * 32 + 3 * 32 * 64)


# --- scanned layers ----------------------------------------------------------------------

def split_params(model):
  graphdef, params = nnx.split(model, nnx.Param)
  return graphdef, nnx.to_pure_dict(params)


def loss_and_grads(graphdef, params, t, pos, seg):
  loss = lambda p: (nnx.merge(graphdef, p)(t, pos, seg) ** 2).mean()
  return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("remat,policy", [(False, "full"), (True, "full"),
                                          (True, "dots_with_no_batch_dims_saveable")])
def test_scanned_layers_equal_unrolled_outputs_and_gradients(remat, policy):
  cfg = dataclasses.replace(CFG, n_layers=3, remat=remat, remat_policy=policy)
  unrolled = build(cfg, seed=3)
  scanned = build(dataclasses.replace(cfg, scan_layers=True), seed=3)
  g_u, p_u = split_params(unrolled)
  g_s, p_s = split_params(scanned)
  assert p_s["blocks"]["attn"]["wq"].shape == (3, 32, 4, 8)  # [layers, ...]
  # the same seed gives the same parameters in either layout
  jax.tree.map(np.testing.assert_array_equal, p_s, layout.stack(p_u))
  jax.tree.map(np.testing.assert_array_equal, layout.unstack(p_s), p_u)
  t = tokens(B=2, T=12, seed=4)
  seg = jnp.array([[1] * 7 + [2] * 5, [1] * 12])
  pos = jnp.array([list(range(7)) + list(range(5)), list(range(12))])
  loss_u, grad_u = loss_and_grads(g_u, p_u, t, pos, seg)
  loss_s, grad_s = loss_and_grads(g_s, p_s, t, pos, seg)
  np.testing.assert_allclose(loss_s, loss_u, rtol=1e-6)
  np.testing.assert_allclose(scanned(t, pos, seg), unrolled(t, pos, seg), atol=1e-5)
  for a, b in zip(jax.tree.leaves(layout.unstack(grad_s)), jax.tree.leaves(grad_u)):
    np.testing.assert_allclose(a, b, atol=1e-6)
  jaxpr = str(jax.make_jaxpr(lambda p: jax.grad(
      lambda p: nnx.merge(g_s, p)(t, pos, seg).sum())(p))(p_s))
  assert "scan[" in jaxpr and ("checkpoint" in jaxpr or "remat" in jaxpr) == remat


def step_hlo_chars(n_layers: int, scan: bool) -> int:
  """Size of the optimised HLO of a forward + backward pass (what XLA compiles)."""
  cfg = dataclasses.replace(CFG, n_layers=n_layers, scan_layers=scan)
  graphdef, params = split_params(nnx.eval_shape(lambda: build(cfg)))
  t = jax.ShapeDtypeStruct((2, 16), jnp.int32)
  loss = lambda p, t: (nnx.merge(graphdef, p)(t, t, t) ** 2).mean()
  return len(jax.jit(jax.grad(loss)).lower(params, t).compile().as_text())


def test_scanned_layers_compile_one_block_whatever_the_depth():
  scanned = step_hlo_chars(24, True) / step_hlo_chars(4, True)
  unrolled = step_hlo_chars(24, False) / step_hlo_chars(4, False)
  assert scanned < 1.1 and unrolled > 3, (scanned, unrolled)


def test_every_remat_policy_is_a_jax_policy():
  assert REMAT_POLICIES[0] == "full"
  for name in REMAT_POLICIES[1:]:
    assert callable(getattr(jax.checkpoint_policies, name))


def test_stacked_params_have_the_layer_axis_first():
  model = nnx.eval_shape(lambda: build(dataclasses.replace(CFG, scan_layers=True)))
  params = nnx.state(model, nnx.Param)
  for path, v in nnx.to_flat_state(params):
    axes = v.get_metadata()["out_sharding"]
    assert (axes[0] == "layers") == (path[0] == "blocks") and len(axes) == len(v.shape)


def test_capture_of_a_scanned_model_says_to_unroll():
  model = build(dataclasses.replace(CFG, scan_layers=True))
  t = tokens()
  pos = jnp.broadcast_to(jnp.arange(12), t.shape)
  with pytest.raises(ValueError, match="nnx.capture needs unrolled layers"):
    nnx.capture(model, nnx.Intermediate)(t, pos, jnp.ones_like(t))
