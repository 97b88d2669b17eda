"""`next_token`: the masked next-token loss on packed rows (answers and traces only for tasks)."""
from __future__ import annotations

import functools

import jax

from rf_jax.model import ModelConfig, flops_per_token
from rf_jax.objectives.base import Context, Objective, compile_logged, register
from rf_jax.sharding import batch_sharding
from rf_jax.step import train_step


def step_cost(config, model: ModelConfig) -> tuple[int, float]:
  """(tokens, FLOPs) of one next-token step on a batch of packed rows."""
  tokens = config.train.batch_size * config.data.seq_len
  return tokens, tokens * flops_per_token(model, config.data.seq_len)


@register("next_token")
class NextToken(Objective):

  def __init__(self, ctx: Context):
    super().__init__(ctx)
    self._jitted = jax.jit(
        functools.partial(train_step, graphdef=ctx.graphdef, tx=ctx.tx, schedule=ctx.schedule,
                          n_tasks=len(ctx.mixture.names), n_levels=ctx.n_levels,
                          allowed=ctx.vocab.allowed()),
        in_shardings=(ctx.shardings, batch_sharding(ctx.mesh)),
        out_shardings=(ctx.shardings, None), donate_argnums=0)
    self._compiled = None
    self.tokens, self.flops = step_cost(ctx.config, ctx.model)

  def step(self, state, step):
    batch = self.ctx.next_batch()
    if self._compiled is None:
      self._compiled = compile_logged(self._jitted, (state, batch), self.ctx, "train step")
    state, metrics = self._compiled(state, batch)
    return state, {**metrics, "tokens": self.tokens}, self.flops

  @staticmethod
  def planned_cost(config, model):
    return step_cost(config, model)
