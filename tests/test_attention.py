"""Attention kernels: each equals the masked reference; "auto" picks as before; the config
choice reaches the model; bad choices are one-line errors."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rf_jax import attention, config
from rf_jax.attention import (KERNELS, NEG_INF, attend, attention_mask, masked_attention,
                              resolve)
from rf_jax.errors import ConfigError
from rf_jax.sharding import make_mesh
from rf_jax.model import ModelConfig, Transformer
from rf_jax.train_state import model_config
from rf_jax.vocab import phase1_vocab
from tests.helpers import ROOT

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, mlp_dim=64)


@attention.register("user_reference")  # a kernel added from outside the package
def user_reference(q, k, v, pos, seg, cfg):
  return reference_attention(q, k, v, pos, seg, cfg.attention_window)


def reference_attention(q, k, v, pos, seg, window):
  """The masked T x T softmax, by autodiff: what every kernel computes."""
  logits = jnp.einsum("bthk,bshk->bhts", q, k) * q.shape[-1] ** -0.5
  mask = attention_mask(pos, pos, seg, seg, window)
  probs = jax.nn.softmax(jnp.where(mask[:, None], logits, NEG_INF), axis=-1)
  return jnp.einsum("bhts,bshk->bthk", probs, v)


def packed_positions(rng, B, T, pad=0):
  """Segments 1, 2, 3, 4 per row with positions restarting in each, then `pad` padding
  tokens (segment 0, position 0, as rf_jax.data.packing writes them)."""
  seg = np.zeros((B, T), np.int32)
  pos = np.zeros((B, T), np.int32)
  n = T - pad
  for b in range(B):
    cuts = np.sort(rng.choice(np.arange(1, n), 3, replace=False))
    for i, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, n])):
      seg[b, lo:hi], pos[b, lo:hi] = i + 1, np.arange(hi - lo)
  return jnp.asarray(pos), jnp.asarray(seg)


def inputs(T, dtype=jnp.float32, pad=3, B=3, H=2, K=8):
  rng = np.random.default_rng(T)
  q, k, v = (jnp.asarray(rng.standard_normal((B, T, H, K)), dtype) for _ in range(3))
  return (q, k, v, *packed_positions(rng, B, T, pad))


def kernel_config(name, window=0, block=8):
  return dataclasses.replace(CFG, attention=name, attention_window=window, attention_block=block)


def value_and_grads(f, q, k, v, pos, seg):
  """Outputs of real tokens, and gradients of a loss that weighs each of them.

  Padding outputs are left out: kernels that work in blocks rely on positions rising by one
  per token, which padding (all at position 0) breaks; only padding attends to padding, and
  the loss masks it out.
  """
  real = (seg > 0)[:, :, None, None]
  w = jax.random.normal(jax.random.key(3), q.shape) * real
  loss = lambda q, k, v: (f(q, k, v, pos, seg).astype(jnp.float32) * w).sum()
  both = lambda q, k, v: (f(q, k, v, pos, seg) * real, jax.grad(loss, argnums=(0, 1, 2))(q, k, v))
  return jax.jit(both)(q, k, v)  # one compilation: faster than op by op


CASES = [("masked", 20, 0), ("masked", 37, 5), ("blocked", 20, 0), ("blocked", 7, 0),
         ("window", 64, 8), ("window", 50, 16), ("window", 37, 5),
         ("window", 16, 16), ("dot_product", 20, 0), ("dot_product", 37, 5),
         ("dot_product", 64, 8), ("dot_product", 16, 16), ("splash", 20, 0), ("splash", 37, 5),
         ("auto", 20, 0), ("auto", 37, 5), ("user_reference", 20, 4)]


@pytest.mark.parametrize("name,T,window", CASES)
def test_kernel_equals_masked_reference_values_and_gradients(name, T, window):
  q, k, v, pos, seg = inputs(T)
  cfg = kernel_config(name, window)
  got, g_got = value_and_grads(lambda *a: attend(cfg, *a), q, k, v, pos, seg)
  want, g_want = value_and_grads(lambda *a: reference_attention(*a, window), q, k, v, pos, seg)
  np.testing.assert_allclose(got, want, atol=2e-6)
  for a, b in zip(g_got, g_want):
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_every_kernel_of_rf_jax_is_tested():
  built_in = {n for n in KERNELS.names() if KERNELS.get(n).fn.__module__ == attention.__name__}
  assert built_in == {"masked", "blocked", "window", "dot_product", "splash", "auto"}
  assert built_in <= {name for name, _, _ in CASES}


@pytest.mark.parametrize("name,window", [("masked", 0), ("blocked", 0), ("window", 6),
                                         ("dot_product", 6)])
def test_bf16_kernels_stay_close_to_the_f32_reference(name, window):
  q, k, v, pos, seg = inputs(24, jnp.bfloat16)
  cfg = kernel_config(name, window)
  got, g_got = value_and_grads(lambda *a: attend(cfg, *a), q, k, v, pos, seg)
  f32 = [a.astype(jnp.float32) for a in (q, k, v)]
  want, g_want = value_and_grads(lambda *a: reference_attention(*a, window), *f32, pos, seg)
  assert got.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in g_got)
  np.testing.assert_allclose(got.astype(jnp.float32), want, atol=2e-2, rtol=2e-2)
  for a, b in zip(g_got, g_want):
    np.testing.assert_allclose(a.astype(jnp.float32), b, atol=3e-2, rtol=2e-2)


def test_dot_product_runs_xla_on_cpu_and_equals_the_explicit_choice():
  q, k, v, pos, seg = inputs(20)
  cfg = kernel_config("dot_product", 5)
  explicit = attention.dot_product(q, k, v, pos, seg, cfg, implementation="xla")
  np.testing.assert_array_equal(attend(cfg, q, k, v, pos, seg), explicit)


# --- the accelerators' kernels ----------------------------------------------------------

@pytest.mark.parametrize("window,mesh_shape", [(0, None), (24, None), (0, (2, 1, 2))])
def test_splash_kernel_equals_the_masked_reference(window, mesh_shape):
  # The TPU kernel itself, run by Pallas' interpreter on CPU: packed segments, padding, a
  # window; under a mesh it runs per shard of rows and heads (shard_map)
  q, k, v, pos, seg = inputs(256, pad=5, B=4, H=2, K=16)
  f = lambda q, k, v, pos, seg: attention.splash_attention(q, k, v, seg, window, interpret=True)
  if mesh_shape is None:
    got, g_got = value_and_grads(f, q, k, v, pos, seg)
  else:
    mesh = make_mesh(mesh_shape, jax.devices()[:4])
    with jax.set_mesh(mesh):
      got, g_got = value_and_grads(f, q, k, v, pos, seg)
      assert "shard_map" in str(jax.make_jaxpr(f)(q, k, v, pos, seg))
  want, g_want = value_and_grads(lambda *a: reference_attention(*a, window), q, k, v, pos, seg)
  np.testing.assert_allclose(got, want, atol=2e-6)
  for a, b in zip(g_got, g_want):
    np.testing.assert_allclose(a, b, atol=2e-5)


@pytest.mark.parametrize("backend,T,window,auto_picks,splash_runs", [
    ("cpu", 256, 0, "blocked", "dot_product"), ("cpu", 100, 0, "masked", "dot_product"),
    ("gpu", 256, 0, "dot_product", "dot_product"), ("gpu", 512, 64, "dot_product", "dot_product"),
    ("tpu", 256, 0, "splash", "splash"), ("tpu", 512, 64, "splash", "splash"),
    ("tpu", 100, 0, "dot_product", "dot_product")])
def test_auto_takes_the_fused_kernel_on_accelerators_and_splash_only_on_tpu(
    backend, T, window, auto_picks, splash_runs):
  cfg = kernel_config("auto", window, 128)
  assert resolve(cfg, T, backend) == auto_picks
  assert resolve(dataclasses.replace(cfg, attention="splash"), T, backend) == splash_runs
  assert resolve(dataclasses.replace(cfg, attention="dot_product"), T, backend) == "dot_product"
  assert resolve(dataclasses.replace(cfg, attention="masked"), T, backend) == "masked"


def test_splash_off_tpu_runs_dot_product():
  # So a TPU run's checkpoint (model.attention=splash) evaluates anywhere
  q, k, v, pos, seg = inputs(256, B=1, H=1, K=4)
  trace = lambda name: str(jax.make_jaxpr(
      lambda *a: KERNELS.get(name).fn(*a, kernel_config(name, 16)))(q, k, v, pos, seg))
  assert jax.default_backend() == "cpu" and trace("splash") == trace("dot_product")
  assert "pallas_call" not in trace("splash")


@pytest.mark.parametrize("name", ["dot_product", "splash", "masked", "auto"])
def test_cached_forms_equal_the_masked_product(name):
  # T new queries against S cached keys under a mask with no causal order (ring slots)
  B, T, S, H, K = 2, 3, 11, 2, 8
  q, k, v = (jax.random.normal(key, (B, n, H, K))
             for key, n in zip(jax.random.split(jax.random.key(4), 3), (T, S, S)))
  mask = jax.random.bernoulli(jax.random.key(5), 0.5, (B, T, S)).at[:, :, -1].set(True)
  got = attention.attend_cached(kernel_config(name, 0), q, k, v, mask)
  want = masked_attention(*(a.transpose(0, 2, 1, 3) for a in (q, k, v)), mask)
  np.testing.assert_allclose(got, want.transpose(0, 2, 1, 3), atol=2e-6)
  assert (KERNELS.get(name).cached is not None) == (name in ("dot_product", "splash"))


@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 1e-5), (jnp.bfloat16, 3e-2)])
def test_masked_attention_hand_written_gradient_matches_autodiff(dtype, tol):
  B, H, T, S, K = 2, 3, 5, 9, 8
  q, k, v = (jax.random.normal(key, (B, H, n, K)).astype(dtype)
             for key, n in zip(jax.random.split(jax.random.key(1), 3), (T, S, S)))
  mask = jax.random.bernoulli(jax.random.key(2), 0.6, (B, T, S)).at[:, :, 0].set(True)

  def reference(q, k, v):
    s = jnp.einsum("bhtk,bhsk->bhts", q.astype(jnp.float32), k.astype(jnp.float32)) * K ** -0.5
    p = jax.nn.softmax(jnp.where(mask[:, None], s, NEG_INF), axis=-1)
    return jnp.einsum("bhts,bhsk->bhtk", p, v.astype(jnp.float32))

  w = jax.random.normal(jax.random.key(3), (B, H, T, K))
  out = masked_attention(q, k, v, mask)
  assert out.dtype == dtype
  np.testing.assert_allclose(out.astype(jnp.float32), reference(q, k, v), atol=tol, rtol=tol)
  mine = jax.grad(lambda *a: (masked_attention(*a, mask).astype(jnp.float32) * w).sum(),
                  argnums=(0, 1, 2))(q, k, v)
  ref = jax.grad(lambda *a: (reference(*a) * w).sum(), argnums=(0, 1, 2))(q, k, v)
  for a, b in zip(mine, ref):
    assert a.dtype == dtype
    np.testing.assert_allclose(a.astype(jnp.float32), b, atol=tol * 4, rtol=tol)


def test_attention_mask_is_causal_within_the_window():
  positions, segments = jnp.arange(5)[None], jnp.ones((1, 5))
  m = attention_mask(positions, positions, segments, segments, 2)
  assert m[0].astype(int).tolist() == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0],
                                       [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]


# --- "auto" ------------------------------------------------------------------------------

@pytest.mark.parametrize("T,window,block,picked", [
    (255, 0, 128, "masked"), (256, 0, 128, "blocked"), (4096, 0, 128, "blocked"),
    (4096, 0, 0, "masked"), (512, 64, 128, "window"), (64, 64, 128, "masked"),
    (200, 300, 16, "masked"), (20, 0, 8, "blocked"), (20, 0, 16, "masked")])
def test_auto_picks_what_the_model_picked_before(T, window, block, picked):
  cfg = kernel_config("auto", window, block)
  assert resolve(cfg, T) == picked
  assert resolve(dataclasses.replace(cfg, attention="dot_product"), T) == "dot_product"
  q, k, v, pos, seg = inputs(T, B=1, H=1, K=4)
  trace = lambda name: str(jax.make_jaxpr(
      lambda *a: KERNELS.get(name).fn(*a, cfg))(q, k, v, pos, seg))
  assert trace("auto") == trace(picked)


def build(cfg, seed=0):
  with nnx.use_eager_sharding(False):
    return Transformer(cfg, nnx.Rngs(seed))


@pytest.mark.slow
def test_auto_runs_the_blocked_kernel_in_the_model_and_matches_one_masked_product():
  # T = 2.5 blocks, three packed segments: values and gradients match the T x T path
  model = build(dataclasses.replace(CFG, attention_block=8))
  t = jax.random.randint(jax.random.key(3), (2, 20), 0, 64)
  seg = jnp.array([[1] * 7 + [2] * 9 + [3] * 4, [1] * 20])
  pos = jnp.array([list(range(7)) + list(range(9)) + list(range(4)), list(range(20))])
  blocked = model(t, pos, seg)
  jaxpr = str(jax.make_jaxpr(lambda t: model(t, pos, seg))(t)).replace(" ", "")
  assert "20,20]" not in jaxpr and "8,16]" in jaxpr  # block 2 sees 16 keys, never a 20 x 20
  full, _ = nnx.capture(model, nnx.Intermediate)(t, pos, seg)  # the one-product path
  np.testing.assert_allclose(blocked, full, atol=1e-5)
  graphdef, params = nnx.split(model, nnx.Param)
  loss = lambda p, capture: ((nnx.capture(nnx.merge(graphdef, p), nnx.Intermediate)(t, pos, seg)[0]
                              if capture else nnx.merge(graphdef, p)(t, pos, seg)) ** 2).mean()
  grad = jax.jit(jax.grad(loss), static_argnums=1)  # one compilation each: faster than op by op
  g1, g2 = grad(params, False), grad(params, True)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_auto_runs_the_window_kernel_in_the_model_and_matches_full_masking():
  model = build(dataclasses.replace(CFG, attention_window=6))
  tokens = jax.random.randint(jax.random.key(1), (2, 40), 0, 64)
  pos = jnp.broadcast_to(jnp.arange(40), (2, 40))
  seg = jnp.ones((2, 40), jnp.int32)
  blockwise = model(tokens, pos, seg)
  jaxpr = str(jax.make_jaxpr(lambda t: model(t, pos, seg))(tokens))
  assert "40,40" not in jaxpr.replace(" ", "")  # no T x T score matrix anywhere
  full, _ = nnx.capture(model, nnx.Intermediate)(tokens, pos, seg)  # the full masked path
  np.testing.assert_allclose(blockwise, full, atol=1e-5)


# --- the config choice -------------------------------------------------------------------

@pytest.mark.parametrize("window,names", [
    (0, ("masked", "blocked", "dot_product", "user_reference")),
    (5, ("masked", "window", "dot_product", "user_reference"))])
def test_the_configured_kernel_reaches_the_model(window, names):
  base = dataclasses.replace(CFG, attention_window=window, attention_block=8)
  t = jax.random.randint(jax.random.key(5), (2, 24), 0, 64)
  rng = np.random.default_rng(5)
  pos, seg = packed_positions(rng, 2, 24, pad=2)
  real = (seg > 0)[:, :, None]  # padding outputs are free to differ (see value_and_grads)
  auto = build(base)(t, pos, seg) * real
  for name in names:
    model = build(dataclasses.replace(base, attention=name))
    jaxpr = str(jax.make_jaxpr(lambda t: model(t, pos, seg))(t))
    assert ("dot_general" in jaxpr) and (("custom_vjp" in jaxpr) == (name not in (
        "dot_product", "user_reference")))  # the hand-written gradient, or not
    np.testing.assert_allclose(model(t, pos, seg) * real, auto, atol=1e-5)


def test_unknown_kernel_is_a_one_line_error_listing_the_known_ones():
  with pytest.raises(ConfigError, match="unknown attention kernel 'flash'") as e:
    dataclasses.replace(CFG, attention="flash").validate()
  message = str(e.value)
  assert "\n" not in message
  for name in ("auto", "masked", "blocked", "window", "dot_product", "splash"):
    assert name in message


def test_kernels_that_cannot_run_the_model_config_are_errors():
  with pytest.raises(ConfigError, match="attention_window > 0"):
    kernel_config("window", 0).validate()
  with pytest.raises(ConfigError, match="attention_window=0"):
    kernel_config("blocked", 16).validate()
  with pytest.raises(ConfigError, match="attention_block > 0"):
    kernel_config("blocked", 0, 0).validate()
  for name in ("auto", "masked", "dot_product", "splash"):
    kernel_config(name, 16).validate()
    kernel_config(name, 0).validate()


def test_model_attention_in_a_phase_config():
  cfg = config.load(f"{ROOT}/configs/phase1.py:tiny")
  assert cfg.model.attention == "auto" and model_config(cfg, phase1_vocab()).attention == "auto"
  config.override(cfg, {"model.attention": "dot_product"})
  assert model_config(cfg, phase1_vocab()).attention == "dot_product"
  config.override(cfg, {"model.attention": "nope"})
  with pytest.raises(ConfigError, match="unknown attention kernel 'nope'"):
    model_config(cfg, phase1_vocab())
