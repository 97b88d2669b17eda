"""KV-cache decoding equals full recomputation; sampling options behave."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rf_jax.model import ModelConfig, Transformer
from rf_jax.sampling import decode_recompute, left_pad, sample

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2, mlp_dim=64)
EOS = 2


def setup(cfg, seed=0):
  with nnx.use_eager_sharding(False):
    model = Transformer(cfg, nnx.Rngs(seed))
  graphdef, params = nnx.split(model, nnx.Param)
  rng = np.random.default_rng(seed)
  prompts = [list(rng.integers(3, 50, size=n)) for n in (3, 9, 5, 12)]
  tokens, mask = left_pad(prompts, 12, 0)
  return graphdef, nnx.to_pure_dict(params), jnp.asarray(tokens), jnp.asarray(mask)


def until_eos(row):
  row = list(np.asarray(row))
  return row[:row.index(EOS) + 1] if EOS in row else row


@pytest.mark.parametrize("window,kernel,scan", [
    (0, "auto", False), (5, "auto", False), (0, "dot_product", False), (5, "dot_product", False),
    (5, "splash", False), (0, "auto", True), (5, "dot_product", True)])
def test_cached_greedy_equals_recomputation(window, kernel, scan):
  # with each kernel (the fused one in both paths) and either layer layout
  cfg = dataclasses.replace(CFG, attention_window=window, attention=kernel, scan_layers=scan)
  graphdef, params, tokens, mask = setup(cfg)
  sampler = jax.jit(functools.partial(sample, graphdef=graphdef, max_new=16, valid_vocab=60,
                                      eos_id=EOS))
  cached = sampler(params, tokens, mask, jax.random.key(0))
  full = jax.jit(functools.partial(decode_recompute, graphdef=graphdef, max_new=16,
                                   valid_vocab=60))(params, tokens, mask)
  for a, b in zip(cached, full):
    assert until_eos(a) == until_eos(b)
  assert np.asarray(cached).max() < 60  # ids outside the valid vocabulary never come out
  jaxpr = str(jax.make_jaxpr(sampler)(params, tokens, mask, jax.random.key(0)))
  assert ("custom_vjp" in jaxpr) == (kernel == "auto")  # the masked product, or the fused kernel
  assert ("scan[" in jaxpr) == scan


def test_padding_does_not_change_the_answer():
  graphdef, params, tokens, mask = setup(CFG)
  run = jax.jit(functools.partial(sample, graphdef=graphdef, max_new=8, valid_vocab=64, eos_id=EOS))
  a = run(params, tokens, mask, jax.random.key(0))
  t2, m2 = left_pad([list(np.asarray(tokens[1])[np.asarray(mask[1]) > 0])], 20, 0)
  b = run(params, jnp.asarray(t2), jnp.asarray(m2), jax.random.key(0))
  assert until_eos(a[1]) == until_eos(b[0])


@pytest.mark.slow
def test_temperature_top_k_and_eos():
  graphdef, params, tokens, mask = setup(CFG)
  kw = dict(graphdef=graphdef, max_new=10, valid_vocab=64, eos_id=EOS)
  greedy = sample(params, tokens, mask, jax.random.key(0), **kw)
  top1 = sample(params, tokens, mask, jax.random.key(5), temperature=1.0, top_k=1, **kw)
  np.testing.assert_array_equal(greedy, top1)
  s1 = sample(params, tokens, mask, jax.random.key(1), temperature=2.0, **kw)
  s1b = sample(params, tokens, mask, jax.random.key(1), temperature=2.0, **kw)
  s2 = sample(params, tokens, mask, jax.random.key(2), temperature=2.0, **kw)
  np.testing.assert_array_equal(s1, s1b)
  assert not np.array_equal(s1, s2)
  # after <eos> a row stays <eos>
  for row in np.asarray(s1):
    if EOS in row:
      assert (row[list(row).index(EOS):] == EOS).all()
