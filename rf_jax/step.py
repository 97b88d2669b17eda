"""Pure step functions. `train.py` jits them once with shardings and donation."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from rf_jax.sampling import allowed_logits


def apply_model(graphdef, params, batch):
  model = nnx.merge(graphdef, params)
  return model(batch["inputs"], batch["positions"], batch["segment_ids"])


def masked_xent(logits_BTV, targets_BT, mask_BT):
  """Mean cross-entropy and token accuracy over the positions where mask is 1."""
  logp = jax.nn.log_softmax(logits_BTV, axis=-1)
  nll = -jnp.take_along_axis(logp, targets_BT[..., None], axis=-1)[..., 0]
  n = jnp.maximum(mask_BT.sum(), 1.0)
  correct = (jnp.argmax(logits_BTV, axis=-1) == targets_BT).astype(jnp.float32)
  return (nll * mask_BT).sum() / n, (correct * mask_BT).sum() / n


def exact_by_task_level(logits_BTV, batch, n_tasks: int, n_levels: int):
  """Per (task, level): examples whose every answer token is the argmax, and examples.

  An example is exact under teacher forcing iff greedy decoding reproduces it, so this
  is greedy exact match, measured for free on training batches.
  """
  B, T = batch["targets"].shape
  mask = batch["loss_mask"] > 0
  wrong = mask & (jnp.argmax(logits_BTV, axis=-1) != batch["targets"])
  seg = (jnp.arange(B)[:, None] * (T + 1) + batch["segment_ids"]).reshape(-1)
  n_seg = B * (T + 1)
  wrong_s = jax.ops.segment_sum(wrong.reshape(-1).astype(jnp.int32), seg, n_seg)
  scored_s = jax.ops.segment_sum(mask.reshape(-1).astype(jnp.int32), seg, n_seg) > 0
  key = batch["task_ids"] * n_levels + batch["levels"] - 1
  key_s = jax.ops.segment_max(key.reshape(-1), seg, n_seg)
  key_s = jnp.where(scored_s & (key_s >= 0), key_s, n_tasks * n_levels)  # dump bucket
  n = n_tasks * n_levels + 1
  exact = jax.ops.segment_sum((wrong_s == 0).astype(jnp.int32), key_s, n)[:-1]
  count = jax.ops.segment_sum(jnp.ones_like(key_s), key_s, n)[:-1]
  return exact.reshape(n_tasks, n_levels), count.reshape(n_tasks, n_levels)


def loss_fn(params, graphdef, batch, n_tasks: int = 0, n_levels: int = 0, allowed=None):
  logits = apply_model(graphdef, params, batch)
  if allowed is not None:  # the phase's action space (Vocab.allowed)
    logits = allowed_logits(logits, allowed)
  loss, acc = masked_xent(logits, batch["targets"], batch["loss_mask"])
  aux = {"token_accuracy": acc}
  if n_tasks:
    aux["exact"], aux["count"] = exact_by_task_level(logits, batch, n_tasks, n_levels)
  return loss, aux


def train_step(state, batch, *, graphdef, tx: optax.GradientTransformation,
               schedule: optax.Schedule, n_tasks: int = 0, n_levels: int = 0, allowed=None):
  """One AdamW step on the masked next-token loss. Pure: (state, batch) -> (state, metrics)."""
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state["params"], graphdef, batch, n_tasks, n_levels, allowed)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  metrics = {
      "loss": loss,
      "grad_norm": optax.global_norm(grads),
      "learning_rate": schedule(state["step"]) * optax.tree_utils.tree_get(
          state["opt_state"], "budget_scale", 1.0),
      "loss_tokens": batch["loss_mask"].sum(),
      **aux,
  }
  return {**state, "params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics


def eval_loss(params, batch, *, graphdef):
  loss, aux = loss_fn(params, graphdef, batch)
  return {"loss": loss, **aux}
