"""`schedule`: next-token steps until `objective.switch_step`, reward-only (`rl`) steps after."""
from __future__ import annotations

from rf_jax.objectives.base import Context, Objective, register
from rf_jax.objectives.next_token import NextToken
from rf_jax.objectives.policy_gradient import PolicyGradient


@register("schedule")
class Schedule(Objective):

  def __init__(self, ctx: Context):
    super().__init__(ctx)
    self.switch = int(ctx.config.objective.switch_step)
    self._next_token = NextToken(ctx)
    # Built only if the run reaches it: a schedule that never switches needs no rl config.
    self._rl = PolicyGradient(ctx) if self.switch < ctx.config.train.steps else None

  def step(self, state, step):
    return (self._next_token if step < self.switch else self._rl).step(state, step)

  @staticmethod
  def planned_cost(config, model):
    """The mean over the run's steps."""
    steps = max(config.train.steps, 1)
    first = min(max(int(config.objective.switch_step), 0), steps)
    return tuple((first * a + (steps - first) * b) / steps for a, b in zip(
        NextToken.planned_cost(config, model), PolicyGradient.planned_cost(config, model)))

  draws_prompts = True

  def state(self):
    return self._rl.state() if self._rl is not None else {}

  def load_state(self, state):
    if self._rl is not None:
      self._rl.load_state(state)

  @staticmethod
  def keeps_reference(config) -> bool:
    return (config.objective.switch_step < config.train.steps
            and PolicyGradient.keeps_reference(config))
