"""Training objectives, chosen by name in `objective.kind`.

Built in: `next_token`, `rl` (policy gradient on task rewards), `mixed` (both every step)
and `schedule` (next-token, then rl). A new objective is one module: a subclass of
`Objective` decorated with `@register("name")`, named in `objective.modules` when it lives
outside rf_jax (see base.py for the contract).
"""
from rf_jax.objectives.base import (OBJECTIVES, Context, Objective, compile_logged, get,
                                    planned_cost, register)
from rf_jax.objectives import next_token  # noqa: F401  (registers the built-in objectives)
from rf_jax.objectives import policy_gradient  # noqa: F401
from rf_jax.objectives import mixed  # noqa: F401
from rf_jax.objectives import schedule  # noqa: F401

__all__ = ["OBJECTIVES", "Context", "Objective", "compile_logged", "get", "planned_cost",
           "register"]
