"""Pure step functions. `train.py` jits them once with shardings and donation."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx


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


def loss_fn(params, graphdef, batch):
  logits = apply_model(graphdef, params, batch)
  loss, acc = masked_xent(logits, batch["targets"], batch["loss_mask"])
  return loss, {"token_accuracy": acc}


def train_step(state, batch, *, graphdef, tx: optax.GradientTransformation,
               schedule: optax.Schedule):
  """One AdamW step on the masked next-token loss. Pure: (state, batch) -> (state, metrics)."""
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state["params"], graphdef, batch)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  metrics = {
      "loss": loss,
      "grad_norm": optax.global_norm(grads),
      "learning_rate": schedule(state["step"]),
      "loss_tokens": batch["loss_mask"].sum(),
      **aux,
  }
  return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics


def eval_loss(params, batch, *, graphdef):
  loss, aux = loss_fn(params, graphdef, batch)
  return {"loss": loss, **aux}
