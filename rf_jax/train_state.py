"""Train state as a plain pytree, its optimizer, and its sharded abstract form.

state = {"params": nested dict, "opt_state": optax state, "step": int32[]}. Pure dicts
(not nnx.State) so checkpoints are readable without rf_jax and restore by structure.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from rf_jax.errors import ConfigError
from rf_jax.model import ModelConfig, Transformer
from rf_jax.plugins import import_modules

State = dict[str, Any]


def model_config(config, vocab) -> ModelConfig:
  """The model of a phase config; embedding rows rounded up to model.vocab_multiple."""
  m = config.model
  # A user's attention kernel registers itself when its module is imported.
  import_modules(m.get("attention_modules", ()), "model.attention_modules")
  mult = m.get("vocab_multiple", 128)
  fields = {k: v for k, v in m.to_dict().items()
            if k not in ("vocab_multiple", "attention_modules")}
  try:
    cfg = ModelConfig(vocab_size=-(-vocab.size // mult) * mult, **fields)
  except TypeError as e:
    raise ConfigError(f"config.model: {e}") from None
  try:
    cfg.validate()
  except ValueError as e:  # the model's own checks name the fields to change
    raise ConfigError(str(e)) from None
  return cfg


def mesh_rules(config) -> tuple:
  """The config's logical-axis rules; the layer axis of stacked blocks (model.scan_layers)
  is replicated unless a rule maps it."""
  rules = tuple((name, tuple(axes) if isinstance(axes, (list, tuple)) else axes)
                for name, axes in config.mesh.rules)
  return rules if any(name == "layers" for name, _ in rules) else rules + (("layers", None),)


def make_schedule(peak_lr: float, warmup_steps: int, total_steps: int,
                  end_lr_fraction: float = 0.1, decay_over: str = "steps") -> optax.Schedule:
  """Linear warmup to `peak_lr`, then a cosine decay to `end_lr_fraction` of it over the
  steps; with decay_over = "budget" the schedule holds the peak and `budget_decay` (applied
  by `scale_by_budget`) decays it over the share of the run's budget spent."""
  warmup = max(1, min(warmup_steps, total_steps - 1))
  if decay_over == "budget":
    return optax.warmup_constant_schedule(0.0, peak_lr, warmup)
  if decay_over != "steps":
    raise ConfigError(f"train.decay_over must be 'steps' or 'budget', got {decay_over!r}")
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak_lr, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=peak_lr * end_lr_fraction)


def budget_decay(spent: float, end_lr_fraction: float) -> float:
  """The cosine factor (1 -> end_lr_fraction) at `spent`, the share of the budget used."""
  spent = min(max(spent, 0.0), 1.0)
  return end_lr_fraction + (1 - end_lr_fraction) * 0.5 * (1 + math.cos(math.pi * spent))


class BudgetScale(NamedTuple):
  budget_scale: jax.Array  # float32[]: set by the training loop before each step


def scale_by_budget() -> optax.GradientTransformation:
  """Multiplies the updates by the factor in its state. A reward step costs what the policy
  writes, so the steps a FLOP budget buys are unknown when the optimizer is built; the loop
  sets the factor from the FLOPs spent instead (`set_budget_scale`). Placed after AdamW it
  scales the learning rate and the weight decay alike, as a lower learning rate would."""
  def init(params):
    del params
    return BudgetScale(jnp.ones((), jnp.float32))

  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u: u * state.budget_scale.astype(u.dtype), updates), state
  return optax.GradientTransformation(init, update)


def set_budget_scale(state: State, scale: float) -> State:
  """The state with its `scale_by_budget` factor set to `scale` (same sharding)."""
  old = optax.tree_utils.tree_get(state["opt_state"], "budget_scale")
  new = jax.device_put(jnp.asarray(scale, jnp.float32), old.sharding)
  return {**state, "opt_state": optax.tree_utils.tree_set(state["opt_state"], budget_scale=new)}


def make_optimizer(schedule: optax.Schedule, weight_decay: float, b1: float, b2: float,
                   grad_clip: float, skip_nonfinite: int = 0,
                   decay_over: str = "steps") -> optax.GradientTransformation:
  # Decay matrices only: norm scales are 1-D.
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  tx = optax.chain(
      optax.clip_by_global_norm(grad_clip),
      optax.adamw(schedule, b1=b1, b2=b2, weight_decay=weight_decay, mask=decay_mask),
      *([scale_by_budget()] if decay_over == "budget" else []),
  )
  # A step with non-finite gradients leaves parameters and moments as they were; the loop
  # counts such steps and stops after `skip_nonfinite` of them (rf_jax/loop.py).
  return optax.apply_if_finite(tx, skip_nonfinite) if skip_nonfinite > 0 else tx


@jax.jit
def all_finite(tree) -> jax.Array:
  """True when every array in `tree` is finite (one device reduction, one host read)."""
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def abstract_model(cfg: ModelConfig, mesh, rules):
  """(graphdef, abstract params with NamedShardings) without allocating anything."""
  with jax.set_mesh(mesh), nnx.logical_axis_rules(rules):
    model = nnx.eval_shape(lambda: Transformer(cfg, nnx.Rngs(0)))
    graphdef, abs_params = nnx.split(model, nnx.Param)
    shardings = nnx.get_named_sharding(abs_params, mesh)
  abs_params = nnx.to_pure_dict(abs_params)
  shardings = nnx.to_pure_dict(shardings)
  abs_params = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            abs_params, shardings)
  return graphdef, abs_params


def state_shardings(abs_params, tx: optax.GradientTransformation, mesh):
  """Shardings of the whole state; optimizer moments follow their parameters."""
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  param_sh = jax.tree.map(lambda a: a.sharding, abs_params)
  abs_opt = jax.eval_shape(tx.init, abs_params)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abs_opt, param_sh,
                                 transform_non_params=lambda _: replicated)
  return {"params": param_sh, "opt_state": opt_sh, "step": replicated}


def abstract_state(abs_params, tx, mesh) -> State:
  """ShapeDtypeStructs with shardings: the restore target for any checkpoint."""
  shardings = state_shardings(abs_params, tx, mesh)
  shapes = jax.eval_shape(lambda p: {"params": p, "opt_state": tx.init(p),
                                     "step": jnp.zeros((), jnp.int32)}, abs_params)
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      shapes, shardings)


def init_params_fn(cfg: ModelConfig, rules):
  def init(seed):
    with nnx.logical_axis_rules(rules):
      model = Transformer(cfg, nnx.Rngs(params=jax.random.key(seed)))
    return nnx.to_pure_dict(nnx.split(model, nnx.Param)[1])
  return init


def init_params(cfg: ModelConfig, mesh, rules, seed: int):
  """Fresh parameters, initialised directly into the sharded layout (no full copy on one device)."""
  _, abs_params = abstract_model(cfg, mesh, rules)
  shardings = jax.tree.map(lambda a: a.sharding, abs_params)
  with jax.set_mesh(mesh):
    return jax.jit(init_params_fn(cfg, rules), out_shardings=shardings)(
        jnp.asarray(seed, jnp.uint32))


def state_from_params(params, tx, mesh) -> State:
  """A fresh optimizer and step 0 around `params` (which are donated)."""
  abs_params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding),
                            params)
  shardings = state_shardings(abs_params, tx, mesh)
  fresh = lambda p: {"params": p, "opt_state": tx.init(p), "step": jnp.zeros((), jnp.int32)}
  with jax.set_mesh(mesh):
    return jax.jit(fresh, out_shardings=shardings, donate_argnums=0)(params)


def init_state(cfg: ModelConfig, tx, mesh, rules, seed: int) -> State:
  return state_from_params(init_params(cfg, mesh, rules, seed), tx, mesh)
