"""An objective written outside the package, named in the config, trains with the library's
loop, checkpoints and resumes, with nothing in rf_jax changed."""
import json

import numpy as np
import pytest

from rf_jax import objectives, train
from rf_jax.errors import ConfigError

from helpers import load_config

pytestmark = pytest.mark.slow

USER_OBJECTIVE = '''
import jax
import jax.numpy as jnp
import optax

from rf_jax.objectives import Objective, register
from rf_jax.objectives.next_token import step_cost
from rf_jax.step import apply_model


def smoothed_xent(params, graphdef, batch, eps):
  """Cross-entropy against (1 - eps) * one-hot + eps * uniform, on the loss-masked tokens."""
  logp = jax.nn.log_softmax(apply_model(graphdef, params, batch), axis=-1)
  nll = -jnp.take_along_axis(logp, batch["targets"][..., None], axis=-1)[..., 0]
  per_token = (1 - eps) * nll - eps * logp.mean(axis=-1)
  mask = batch["loss_mask"]
  return (per_token * mask).sum() / jnp.maximum(mask.sum(), 1.0)


@register("label_smoothing")
class LabelSmoothing(Objective):

  def __init__(self, ctx):
    super().__init__(ctx)
    eps = ctx.config.objective.smoothing

    def update(state, batch):
      loss, grads = jax.value_and_grad(smoothed_xent)(state["params"], ctx.graphdef, batch, eps)
      delta, opt_state = ctx.tx.update(grads, state["opt_state"], state["params"])
      return {**state, "params": optax.apply_updates(state["params"], delta),
              "opt_state": opt_state, "step": state["step"] + 1}, {"loss": loss}

    self._update = jax.jit(update, donate_argnums=0)
    self.tokens, self.flops = step_cost(ctx.config, ctx.model)

  def step(self, state, step):
    state, metrics = self._update(state, self.ctx.next_batch())
    return state, {**metrics, "tokens": self.tokens}, self.flops
'''


def _config(path, steps):
  c = load_config()
  c.objective.update(kind="label_smoothing", modules=(str(path),))
  c.objective.smoothing = 0.1  # a field of the user's own objective
  c.train.update(steps=steps, log_every=1, eval_every=0, eval_levels=(), checkpoint_every=6,
                 warmup_steps=1, end_lr_fraction=1.0)
  return c


def _losses(workdir):
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


def test_user_objective_file_trains_checkpoints_and_resumes(tmp_path, monkeypatch):
  path = tmp_path / "my_objective.py"
  path.write_text(USER_OBJECTIVE)
  monkeypatch.chdir(tmp_path)
  train.run(_config(path, 12), str(tmp_path / "straight"))
  straight = _losses(tmp_path / "straight")
  assert sorted(straight) == list(range(1, 13))
  assert straight[12] < straight[1] - 0.5  # it learns
  train.run(_config(path, 6), str(tmp_path / "resumed"))
  train.run(_config(path, 12), str(tmp_path / "resumed"))
  resumed = _losses(tmp_path / "resumed")
  np.testing.assert_allclose([resumed[s] for s in range(1, 13)],
                             [straight[s] for s in range(1, 13)], rtol=1e-6)
  # The same run with next_token logs other losses: the user's objective is what trained.
  c = _config(path, 3)
  c.objective.kind = "next_token"
  train.run(c, str(tmp_path / "next_token"))
  assert abs(_losses(tmp_path / "next_token")[3] - straight[3]) > 1e-3


def test_unknown_objective_and_missing_module_are_one_line_errors(tmp_path):
  c = load_config()
  c.objective.kind = "label_smoothing_typo"
  with pytest.raises(ConfigError, match="unknown objective 'label_smoothing_typo'") as e:
    objectives.get(c)
  assert "\n" not in str(e.value)
  c.objective.modules = (str(tmp_path / "missing.py"),)
  with pytest.raises(ConfigError, match="objective.modules: file .*missing.py does not exist"):
    train.run(c, str(tmp_path / "w"))
