"""`mixed`: every step minimises (1 - w) * policy-gradient loss + w * next-token loss, with
w = 1 - objective.rl_weight, on a batch of rollouts and a batch of packed rows."""
from __future__ import annotations

from rf_jax.objectives.base import Context, Objective, register
from rf_jax.objectives.next_token import step_cost
from rf_jax.objectives.policy_gradient import PolicyGradient, make_rl_trainer, rollout_cost


@register("mixed")
class Mixed(Objective):

  def __init__(self, ctx: Context):
    super().__init__(ctx)
    self._trainer = make_rl_trainer(ctx, nt_weight=1 - ctx.config.objective.rl_weight)
    self.nt_tokens, self.nt_flops = step_cost(ctx.config, ctx.model)

  def step(self, state, step):
    state, metrics = self._trainer(state, step, self.ctx.next_batch())
    metrics["tokens"] += self.nt_tokens
    metrics["update_flops"] += self.nt_flops
    return state, metrics, metrics.pop("flops") + self.nt_flops

  @staticmethod
  def planned_cost(config, model):
    tokens, flops = step_cost(config, model)
    return tokens, flops + rollout_cost(config.rl, model)[1]

  keeps_reference = PolicyGradient.keeps_reference
  state, load_state = PolicyGradient.state, PolicyGradient.load_state
  draws_prompts = True
