"""A GRPO group's samples share their prompt: the sampler prefills it once and the update
writes it once per row, each completion a branch that sees the prompt and itself. Both must
compute what the unshared forms compute, for less."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rf_jax.model import ModelConfig
from rf_jax.rl import pg_loss
from rf_jax.rl_rows import (bucket_rows, make_samples, packed_rows, reference_sample,
                            shared_rows)
from rf_jax.sampling import left_pad, sample
from rf_jax.train_state import abstract_model, init_params, mesh_rules

from helpers import load_config, mesh_of, rl_trainer

EOS, ANS, PAD, V, G = 2, 5, 0, 16, 4


def _model(scan=False):
  cfg = ModelConfig(vocab_size=V, d_model=16, n_layers=2, n_heads=2, mlp_dim=32,
                    scan_layers=scan)
  mesh, rules = mesh_of((1, 1, 1)), mesh_rules(load_config())
  graphdef, _ = abstract_model(cfg, mesh, rules)
  return graphdef, init_params(cfg, mesh, rules, 0)


def _groups(think=0):
  """Three prompts (two with equal tokens, drawn apart) x G samples, and a reference answer
  for each prompt."""
  rng = np.random.default_rng(3)
  prompts = [list(rng.integers(6, 16, n)) for n in (5, 3, 4)]
  prompts.append(list(prompts[1]))
  ids = [p for p in prompts for _ in range(G)]
  comp = rng.integers(6, 16, (len(ids), 6)).astype(np.int32)
  comp[np.arange(len(ids)), rng.integers(1, 6, len(ids))] = EOS
  comp[2, 1] = ANS
  adv = rng.normal(size=comp.shape).astype(np.float32)
  samples = make_samples(ids, comp, adv, EOS, ANS, think)
  refs = [reference_sample(p, [int(t) for t in rng.integers(6, 16, 2)] + [EOS], i)
          for i, p in enumerate(prompts)]
  return samples + refs


@pytest.mark.parametrize("think,row_len,scan", [(0, 64, False), (3, 64, False),
                                                (0, 14, False), (0, 64, True)])
def test_shared_rows_give_the_packed_rows_loss_gradient_and_readings(think, row_len, scan):
  """row_len 14 splits a prompt's branches over rows, each with the prompt again."""
  graphdef, params = _model(scan)
  samples = _groups(think)
  packed, shared = packed_rows(samples, row_len, PAD), shared_rows(samples, row_len, PAD)
  assert shared["action_mask"].sum() == packed["action_mask"].sum()
  written = lambda rows: int((rows["segment_ids"] > 0).sum())
  assert written(shared) < (0.8 if row_len > 32 else 1.0) * written(packed)

  def loss(p, rows):
    rows = {k: jnp.asarray(v) for k, v in rows.items()}
    return pg_loss(p, graphdef, rows, allowed=V, clip_eps=0.2, kl_coef=0.0, eos_id=EOS,
                   ans_id=ANS if think else -1, entropy_coef=0.1, references=4)

  (a, aux_a), ga = jax.value_and_grad(loss, has_aux=True)(params, packed)
  (b, aux_b), gb = jax.value_and_grad(loss, has_aux=True)(params, shared)
  np.testing.assert_allclose(float(a), float(b), rtol=1e-5)
  np.testing.assert_allclose(float(aux_a["entropy"]), float(aux_b["entropy"]), rtol=1e-5)
  assert np.asarray(aux_a["reference_wrong"])[1:].tolist() == \
      np.asarray(aux_b["reference_wrong"])[1:].tolist()
  for x, y in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=2e-6)
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(ga)) > 1e-4


def test_a_branch_sees_its_prompt_and_itself_only():
  samples = _groups()[:2 * G]  # two prompts, G samples each
  rows = shared_rows(samples, 64, PAD)
  seg, br = rows["segment_ids"][0], rows["branch"][0]
  assert sorted(set(seg[seg > 0].tolist())) == [1, 2]
  assert set(br[seg == 1].tolist()) == set(range(G + 1))  # the prompt, then G branches
  first = samples[0]
  n = first.n_prompt
  assert rows["inputs"][0, :n - 1].tolist() == first.tokens[:n - 1].tolist()
  assert rows["positions"][0, :n - 1].tolist() == list(range(n - 1))
  # the first branch opens with the prompt's last token at its position
  at = n - 1
  assert rows["inputs"][0, at] == first.tokens[n - 1] and rows["positions"][0, at] == n - 1
  assert rows["targets"][0, at] == first.tokens[n]


def test_bucket_rows_wastes_at_most_a_quarter_with_few_sizes():
  sizes = [bucket_rows(n, 2) for n in range(1, 257)]
  assert all(s >= n and s % 2 == 0 for n, s in zip(range(1, 257), sizes))
  assert all(s <= max(1.25 * n, n + 1) for n, s in zip(range(1, 257), sizes))
  assert len(set(sizes)) <= 4 * 8 + 4  # four sizes per doubling


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_prefilling_a_group_once_samples_what_prefilling_each_row_samples(temperature):
  graphdef, params = _model()
  rng = np.random.default_rng(0)
  prompts = [list(rng.integers(6, 16, n)) for n in (3, 7, 5)]
  tokens, mask = left_pad([p for p in prompts for _ in range(G)], 8, PAD)
  run = lambda group: np.asarray(sample(
      params, jnp.asarray(tokens), jnp.asarray(mask), jax.random.key(1), graphdef=graphdef,
      max_new=6, valid_vocab=V, eos_id=EOS, temperature=temperature, group=group))
  once, each = run(G), run(1)
  np.testing.assert_array_equal(once, each)
  if temperature:
    assert len({tuple(r) for r in once[:G]}) > 1  # a group's samples still differ
  with pytest.raises(ValueError, match="groups of 5"):
    run(5)


def test_a_shared_reward_step_costs_less_and_learns_the_same():
  config = load_config()
  config.rl.update(prompts=8, group_size=4, pass_rate="greedy", credit="token")
  found = {}
  for share in (True, False):
    config.rl.share_prompts = share
    trainer, state = rl_trainer(config, ("copy", "parity", "pointer"))
    state, m = trainer(state, 0)
    found[share] = (m, jax.device_get(state["params"]))
  (on, p_on), (off, p_off) = found[True], found[False]
  assert on["update_tokens"] < 0.6 * off["update_tokens"]
  assert on["flops"] < 0.6 * off["flops"]
  for k in ("reward", "pass@1", "greedy_exact", "response_tokens"):
    assert on[k] == pytest.approx(off[k], rel=1e-6), k
  assert on["pg_loss"] == pytest.approx(off["pg_loss"], rel=1e-4, abs=1e-6)
  for x, y in zip(jax.tree.leaves(p_on), jax.tree.leaves(p_off)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)
