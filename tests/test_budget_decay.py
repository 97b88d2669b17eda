"""The learning rate decaying over the FLOP budget (train.decay_over = budget): runs whose step
cost is unknown up front (reward steps cost what the policy writes) still end their budget at
the bottom of the cosine, with any objective."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rf_jax import objectives
from rf_jax.errors import ConfigError
from rf_jax.train_state import (budget_decay, make_optimizer, make_schedule, model_config,
                                set_budget_scale)
from rf_jax.vocab import phase1_vocab

from helpers import load_config, run_on_one_device, logged


def test_budget_decay_is_a_cosine_over_the_share_spent():
  assert budget_decay(0.0, 0.1) == pytest.approx(1.0)
  assert budget_decay(0.5, 0.1) == pytest.approx(0.55)
  assert budget_decay(1.0, 0.1) == pytest.approx(0.1)
  assert budget_decay(3.0, 0.1) == pytest.approx(0.1)  # past the budget: stays at the end
  with pytest.raises(ConfigError, match="train.decay_over"):
    make_schedule(1e-3, 10, 100, 0.1, "flops")


def test_the_budget_scale_multiplies_the_adamw_update():
  params = {"w": jnp.ones((2, 2)), "b": jnp.ones((2,))}
  grads = {"w": jnp.full((2, 2), 0.5), "b": jnp.full((2,), -1.0)}
  plain = make_optimizer(make_schedule(1e-2, 1, 100, 0.1, "budget"), 0.1, 0.9, 0.98, 1.0)
  scaled = make_optimizer(make_schedule(1e-2, 1, 100, 0.1, "budget"), 0.1, 0.9, 0.98, 1.0,
                          decay_over="budget")
  state = set_budget_scale({"opt_state": scaled.init(params)}, 0.25)
  want, _ = plain.update(grads, plain.init(params), params)
  got, _ = scaled.update(grads, state["opt_state"], params)
  for k in params:  # weight decay included: the same as a learning rate 4x lower
    np.testing.assert_allclose(np.asarray(got[k]), 0.25 * np.asarray(want[k]), rtol=1e-6)
  assert float(optax.tree_utils.tree_get(state["opt_state"], "budget_scale")) == 0.25


def test_a_budgeted_run_decays_its_learning_rate_over_the_flops_it_spends(tmp_path):
  c = load_config()
  c.train.update(steps=50, log_every=1, eval_every=0, eval_levels=(), checkpoint_every=0,
                 decay_over="budget", warmup_steps=2)
  per_step = objectives.planned_cost(c, model_config(c, phase1_vocab()))[1]
  c.train.flop_budget = 6 * per_step
  run_on_one_device(c, tmp_path)
  lr, scale = logged(tmp_path, "train/learning_rate"), logged(tmp_path, "train/lr_scale")
  assert sorted(lr) == [1, 2, 3, 4, 5, 6]  # the budget, not train.steps, ended the run
  peak, end = c.train.learning_rate, c.train.end_lr_fraction
  for step in range(3, 7):  # logged after step index step - 1, past the warmup
    want = budget_decay((step - 1) / 6, end)
    assert scale[step] == pytest.approx(want)
    assert lr[step] == pytest.approx(peak * want, rel=1e-5)
  assert scale[6] < 0.2 < 0.9 < scale[2]
