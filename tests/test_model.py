import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rf_jax.model import ModelConfig, Transformer, flops_per_token

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, mlp_dim=64)


def build(cfg):
  # Plain, unsharded parameters: the trainer shards through jit out_shardings instead.
  with nnx.use_eager_sharding(False):
    return Transformer(cfg, nnx.Rngs(0))


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


def test_flops_window_aware():
  full = flops_per_token(CFG, 4096)
  windowed = flops_per_token(dataclasses.replace(CFG, attention_window=64), 4096)
  assert windowed < full
  assert flops_per_token(CFG, 8) > 6 * 2 * (4 * 32 * 32 + 3 * 32 * 64)
