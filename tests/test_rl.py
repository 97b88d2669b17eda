"""Reward-based training: advantages, the policy gradient against REINFORCE by hand, zero
gradient from equal-reward groups, and the RL step on a (2,2,2) mesh equal to one device."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rf_jax.curriculum import Curriculum
from rf_jax.data.tasks import TaskMixture
from rf_jax.model import ModelConfig
from rf_jax.rl import group_advantages, pg_loss, token_logprobs
from rf_jax.rl_rows import make_samples, padded_rows
from rf_jax.rl_rollouts import draw_prompts
from rf_jax.train_state import abstract_model, init_params, mesh_rules
from rf_jax.vocab import phase1_vocab

from helpers import load_config, mesh_of, rl_trainer, logged

EOS = 2


def test_group_advantages():
  r = np.array([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0]])
  g = group_advantages(r, "grpo")
  np.testing.assert_allclose(g[0], [1, -1, -1, 1], atol=1e-6)
  np.testing.assert_array_equal(g[1], 0.0)  # equal rewards: no signal
  np.testing.assert_allclose(g[2], (r[2] - 0.25) / np.std(r[2]), atol=1e-6)
  np.testing.assert_allclose(group_advantages(r, "mean")[2], r[2] - 0.25, atol=1e-6)
  loo = [r[2, i] - np.mean(np.delete(r[2], i)) for i in range(4)]
  np.testing.assert_allclose(group_advantages(r, "rloo")[2], loo, atol=1e-6)
  with pytest.raises(ValueError, match="rl.advantage"):
    group_advantages(r, "ppo")


def _tiny():
  cfg = ModelConfig(vocab_size=16, d_model=16, n_layers=1, n_heads=2, mlp_dim=32)
  mesh, rules = mesh_of((1, 1, 1)), mesh_rules(load_config())
  graphdef, _ = abstract_model(cfg, mesh, rules)
  params = init_params(cfg, mesh, rules, 0)
  rng = np.random.default_rng(0)
  B, P, N = 6, 5, 4
  prompt = rng.integers(3, 16, (B, P)).astype(np.int32)
  pmask = np.ones((B, P), np.int32)
  pmask[0, :2] = 0  # a left-padded prompt
  comp = rng.integers(3, 16, (B, N)).astype(np.int32)
  comp[1, 1] = EOS  # completions that stop early: tokens after <eos> are not actions
  comp[2, 0] = EOS
  prompts = [list(p[m > 0]) for p, m in zip(prompt, pmask)]
  return graphdef, params, prompts, comp


def _rows(prompts, comp, adv):
  """The update's rows for per-sample advantages `adv`, one padded row per sample."""
  rows = padded_rows(make_samples(prompts, comp, np.asarray(adv, np.float32), EOS), 5, 4, 0)
  return {k: jnp.asarray(v) for k, v in rows.items()}


@pytest.mark.slow
def test_policy_gradient_equals_hand_computed_reinforce():
  graphdef, params, prompts, comp = _tiny()
  adv = jnp.asarray([1.0, -0.5, 2.0, 0.0, -1.5, 0.7])
  batch = _rows(prompts, comp, adv)
  allowed = 16
  grad = jax.grad(lambda p: pg_loss(p, graphdef, batch, allowed=allowed, clip_eps=0.2,
                                    kl_coef=0.0)[0])(params)
  mask = np.asarray(batch["action_mask"])
  assert list(mask.sum(1)) == [4, 2, 1, 4, 4, 4]  # actions end at the first <eos>
  n = mask.sum()
  # REINFORCE by hand: -(1/n) sum_i A_i grad sum_t log pi(a_it), one sequence at a time.
  expected = jax.tree.map(jnp.zeros_like, params)
  for i in range(len(adv)):
    row = {k: v[i:i + 1] for k, v in batch.items() if k != "advantages"}
    g_i = jax.grad(lambda p: (token_logprobs(p, graphdef, row, allowed)[0] *
                              row["action_mask"]).sum())(params)
    expected = jax.tree.map(lambda e, g: e - adv[i] * g / n, expected, g_i)
  for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(expected)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=0)
  assert max(float(jnp.abs(a).max()) for a in jax.tree.leaves(grad)) > 1e-3


def test_equal_reward_group_gives_zero_gradient():
  graphdef, params, prompts, comp = _tiny()
  adv = group_advantages(np.full((2, 3), 0.75), "grpo").reshape(-1)
  batch = _rows(prompts, comp, adv)
  grad = jax.grad(lambda p: pg_loss(p, graphdef, batch, allowed=16, clip_eps=0.2,
                                    kl_coef=0.0)[0])(params)
  for g in jax.tree.leaves(grad):
    np.testing.assert_array_equal(np.asarray(g), 0.0)


def _rl_metrics(shape, steps=3):
  config = load_config()
  config.model.update(d_model=64, n_heads=4, mlp_dim=128)  # shards evenly on (2,2,2)
  config.rl.update(prompts=8, group_size=8, prompt_len=24, max_new=4, temperature=1.0)
  trainer, state = rl_trainer(config, ("parity", "dyck"), steps=steps, shape=shape)
  out = []
  for s in range(steps):
    state, m = trainer(state, s)
    out.append([m["reward"], m["pg_loss"], m["grad_norm"], m["entropy"], m["response_tokens"]])
  assert m["exact"].shape == (2, 4) and m["count"].sum() == 64
  return np.array(out)


@pytest.mark.slow
def test_rl_step_on_222_mesh_matches_one_device():
  ref = _rl_metrics((1, 1, 1))
  assert ref[:, 2].max() > 0.1  # some groups had a signal
  np.testing.assert_allclose(_rl_metrics((2, 2, 2)), ref, atol=1e-5, rtol=1e-5)


def test_prompts_are_a_function_of_the_step():
  mix = TaskMixture.build(("parity", "dyck"), None, (1, 2))
  cur = Curriculum(("parity", "dyck"), 1, 2)
  a, b = draw_prompts(mix, cur, 0, 5, 8), draw_prompts(mix, cur, 0, 5, 8)
  assert a == b and a != draw_prompts(mix, cur, 0, 6, 8)


def _rl_config(steps, objective="rl"):
  c = load_config()
  c.mesh.shape = (-1, 1, 1)
  c.objective.kind = objective
  c.data.update(tasks=("parity", "dyck"), levels=(1, 2))
  c.curriculum.update(kind="adaptive", min_examples=8)
  c.rl.update(prompts=8, group_size=4, prompt_len=24, max_new=8, kl_coef=0.1)
  # A constant learning rate after step 1, so a 3-step run continued to 6 is the 6-step run.
  c.train.update(steps=steps, warmup_steps=1, end_lr_fraction=1.0, log_every=1, eval_every=0,
                 eval_levels=(), checkpoint_every=3)
  return c


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["rl", "mixed"])
def test_rl_state_checkpoints_and_resumes_exactly(tmp_path, objective):
  from rf_jax import train
  train.run(_rl_config(6, objective), str(tmp_path / "straight"))
  train.run(_rl_config(3, objective), str(tmp_path / "resumed"))
  train.run(_rl_config(6, objective), str(tmp_path / "resumed"))
  for key in ("train/reward", "train/pg_loss", "train/kl", "train/grad_norm"):
    a, b = logged(tmp_path / "straight", key), logged(tmp_path / "resumed", key)
    assert sorted(a) == list(range(1, 7)) and a == b, key
  kl = logged(tmp_path / "straight", "train/kl")
  assert kl[1] == 0.0 and kl[6] > 0  # the reference is the initial policy, kept frozen
  if objective == "mixed":
    assert len(logged(tmp_path / "straight", "train/loss")) == 6


def test_bad_objective_and_rl_config_give_one_line_errors():
  from rf_jax.errors import ConfigError
  from rf_jax import objectives
  from rf_jax.data.inputs import make_mixture, make_source
  from rf_jax.objectives.policy_gradient import check_rl_config
  c = load_config()
  c.objective.kind = "ppo"
  with pytest.raises(ConfigError, match="unknown objective 'ppo'; known: next_token, rl, mixed"):
    objectives.get(c)
  mix = TaskMixture.build(("parity", "dyck"), None, (1, 2))
  mesh, v = mesh_of((8, 1, 1)), phase1_vocab()
  for bad, match in (({"prompt_len": 4}, "raise rl.prompt_len"),
                     ({"max_new": 2}, "raise rl.max_new"),
                     ({"group_size": 1}, "rl.group_size must be >= 2"),
                     ({"prompts": 3, "group_size": 3}, "must divide over the data-parallel size"),
                     ({"advantage": "ppo"}, "rl.advantage must be one of"),
                     ({"credit": "word"}, "rl.credit must be one of"),
                     ({"pass_rate": "best"}, "rl.pass_rate must be one of"),
                     ({"replay": -1}, r"rl.replay=-1 must be >= 0"),
                     ({"replay": 8, "replay_samples": 0}, r"rl.replay_samples \(0\) must be >= 1"),
                     ({"replay": 8, "replay_coef": 0.0}, r"rl.replay_coef \(0.0\) must be > 0"),
                     ({"replay": 8, "replay_floor": 1.5}, r"rl.replay_floor \(1.5\) must be in"),
                     ({"replay": 8, "replay_priority": 0.0},
                      r"rl.replay_priority \(0.0\) must be in \(0, 1\]"),
                     ({"solved_level": "last"},
                      r"rl.solved_level must be one of \('current', 'first'\), got 'last'")):
    rl = load_config().rl
    rl.update({"prompt_len": 24, "max_new": 8, **bad})
    with pytest.raises(ConfigError, match=match) as e:
      check_rl_config(rl, mix, (1, 2), v, mesh, 0, False)
    assert "\n" not in str(e.value)
  c = load_config()
  c.data.weights_end = (1, 2)
  with pytest.raises(ConfigError, match="data.weights_end"):
    make_mixture(c, ["copy", "add", "sort"])
  c = load_config()
  c.data.source = "web"
  with pytest.raises(ConfigError, match="data.source must be 'tasks' or 'text'"):
    make_source(c, v, Curriculum(("copy",), 1, 1), TaskMixture.build(("copy",), None, (1, 1)))
