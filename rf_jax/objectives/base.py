"""The objective contract: what the trainer hands an objective, and what one step returns.

An objective is a class registered by name (`@register("name")`, chosen by
`objective.kind`) and built once per run from a `Context`. Each step it takes the train
state and the step number and returns `(state, metrics, flops)`: the new state, scalars
(or arrays) to log, and the FLOPs the step spent (for MFU). Some metric keys are special:
`exact` and `count` ([tasks, levels] greedy exact-match counts) feed the curriculum,
`reward_sum` and `samples` ([tasks, levels] summed sampled rewards and their number) its
focus, and `tokens` feeds tokens/s. Everything else is averaged and logged as `train/<key>`. Host state
an objective keeps between steps (a replay buffer) goes through `state` / `load_state`,
saved with every checkpoint.
An objective that draws reward prompts says so (`draws_prompts`), so `curriculum.focus`,
which shares them out, is refused for one that does not.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import optax

from rf_jax import tasks
from rf_jax.curriculum import Curriculum
from rf_jax.data.tasks import TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.model import ModelConfig
from rf_jax.plugins import Registry
from rf_jax.vocab import Vocab

OBJECTIVES = Registry("objective", "or name your module in objective.modules")


@dataclasses.dataclass(frozen=True)
class Context:
  """Everything an objective may use, built once by the trainer."""
  config: Any                      # the run's ConfigDict: `objective` and `rl` are read here
  mesh: Any
  model: ModelConfig
  graphdef: Any
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  shardings: dict                  # NamedShardings of the train state
  vocab: Vocab
  mixture: TaskMixture
  curriculum: Curriculum
  next_batch: Callable[[], dict]   # the next global batch of packed rows, on the mesh
  log: Callable[[str], None]       # a console line (process 0)
  note: Callable[[dict], None]     # scalars to log once, with the next logged step

  @property
  def n_levels(self) -> int:
    """Levels of the hardest family: the width of the [tasks, levels] exact-match counts."""
    return max(tasks.get(n).max_level for n in self.mixture.names)


class Objective:
  """Base class of objectives. Subclasses implement `__init__(ctx)` and `step`."""

  def __init__(self, ctx: Context):
    self.ctx = ctx

  def step(self, state: dict, step: int) -> tuple[dict, dict, float]:
    raise NotImplementedError

  @staticmethod
  def planned_cost(config, model: ModelConfig) -> tuple[float, float]:
    """(tokens of packed rows trained on, analytic FLOPs) of one step, for planning compute
    budgets before training (rollout tokens count in the FLOPs only)."""
    raise ConfigError(f"objective {config.objective.kind!r} does not declare planned_cost")

  @staticmethod
  def keeps_reference(config) -> bool:
    """Whether the state carries `ref_params`, a frozen copy of the starting parameters."""
    return False

  def state(self) -> dict:
    """Host state the objective keeps between steps (JSON-able), saved with each checkpoint
    so that a resumed run continues as the uninterrupted one would."""
    return {}

  def load_state(self, state: dict) -> None:
    """Restores what `state` returned (an empty dict on a fresh start)."""

  draws_prompts = False  # whether its steps draw reward prompts (which curriculum.focus weighs)


def register(name: str) -> Callable[[type[Objective]], type[Objective]]:
  """Class decorator: makes an objective available as `objective.kind = name`."""
  return OBJECTIVES.register(name)


def get(config) -> type[Objective]:
  return OBJECTIVES.get(config.objective.kind)


def planned_cost(config, model: ModelConfig) -> tuple[float, float]:
  """(packed-row tokens, FLOPs) of one step of `config`'s objective."""
  return get(config).planned_cost(config, model)


def compile_logged(jitted, args: tuple, ctx: Context, what: str):
  """Compiles `jitted` ahead of time, logging its compile time and XLA's memory plan once."""
  t0 = time.perf_counter()
  fn = jitted.lower(*args).compile()
  info = {"perf/compile_s": time.perf_counter() - t0}
  mem = fn.memory_analysis()
  if mem is not None:  # per device, as XLA plans it
    for key, attr in (("arguments", "argument_size_in_bytes"), ("outputs", "output_size_in_bytes"),
                      ("temporaries", "temp_size_in_bytes")):
      info[f"perf/{key}_mib"] = getattr(mem, attr, 0) / 2**20
  ctx.log(f"compiled the {what} in {info['perf/compile_s']:.1f}s; per device: " +
          ", ".join(f"{k[5:-4]} {v:,.1f} MiB" for k, v in info.items() if k.endswith("_mib")))
  ctx.note(info)
  return fn
