"""Reward-based training: sample a group of completions per prompt, score them with the
task's partial-credit `score`, normalise rewards within the group, and take a token-level
clipped policy-gradient step.

Pure pieces (jitted by the caller): `token_logprobs`, `pg_loss`, `rl_step`. Host pieces:
`group_advantages` and `token_advantages` (numpy), the update's rows (rf_jax/rl_rows.py) and
the scorer, which runs Python task code between the jitted rollout and the jitted update.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from rf_jax.sampling import allowed_logits, think_logits

ADVANTAGES = ("grpo", "rloo", "mean", "log", "batch")  # batch: rloo over a family and level
CREDITS = ("sequence", "token")
PASS_RATES = ("samples", "greedy")  # what the curriculum reads: sampled or greedy exact match


def _pooled(g_PGN: np.ndarray, valid_PGN: np.ndarray, kind: str) -> np.ndarray:
  """Advantages of returns [pools, samples, positions] against the pool's other valid samples
  at the same position (one kind of `ADVANTAGES`); 0 where a position has no other sample or
  all its samples agree."""
  if kind not in ADVANTAGES:
    raise ValueError(f"rl.advantage must be one of {ADVANTAGES}, got {kind!r}")
  v = valid_PGN
  n = v.sum(axis=1, keepdims=True)
  mean = (g_PGN * v).sum(axis=1, keepdims=True) / np.maximum(n, 1)
  centred = np.where(v, g_PGN - mean, 0.0)
  if kind in ("rloo", "batch"):  # r minus the mean of the others: n / (n - 1) x centred
    out = centred * n / np.maximum(n - 1, 1)
  elif kind == "mean":
    out = centred
  elif kind == "grpo":
    std = np.sqrt((centred ** 2).sum(axis=1, keepdims=True) / np.maximum(n, 1))
    out = np.where(std > 1e-8, centred / np.maximum(std, 1e-8), 0.0)
  else:  # log: the gradient of log E[r]; 1 / mean capped at the pool's size
    out = centred / np.maximum(mean, 1.0 / np.maximum(n, 1))
  return np.where(v & (n > 1) & (np.abs(centred).max(axis=1, keepdims=True) > 1e-8), out, 0.0)


def group_advantages(rewards_PG: np.ndarray, kind: str = "grpo") -> np.ndarray:
  """Per-sample advantages from [prompts, group] rewards; a group of equal rewards gives 0.

  grpo: (r - mean) / std; rloo (and batch, whose pool is a family and level): r minus the
  mean of the group's other samples; mean: r - mean; log: (r - mean) / mean, the gradient of
  log E[r] (maximum likelihood's weighting: a prompt's hits weigh the same whatever its pass
  rate, so a rare hit is not drowned by common ones), the divisor held at >= 1 / group.
  """
  r = np.asarray(rewards_PG, np.float64)[:, :, None]
  return _pooled(r, np.ones_like(r, bool), kind)[:, :, 0].astype(np.float32)


def token_advantages(rewards: list[np.ndarray], group_size: int, n: int,
                     discount: float = 1.0, kind: str = "rloo") -> np.ndarray:
  """Per-token advantages [samples, n] from per-token rewards (one array per sample, one value
  per action token; samples in groups of `group_size`).

  A token's return is its discounted reward-to-go G_t = sum over t' >= t of
  discount^(t'-t) r_t'. With discount 1 the gradient is unbiased: a token also answers for
  what it makes the model write next. With discount 0 each token is judged by its own reward
  alone: less variance, biased where one token changes what follows. G_t is compared with the
  group's other samples at the same position, as `group_advantages` compares rewards (`kind`;
  rloo's leave-one-out baseline is independent of the sample's own actions). Positions past a
  sample's end are 0.
  """
  B = len(rewards)
  togo, valid = np.zeros((B, n)), np.zeros((B, n), bool)
  for i, r in enumerate(rewards):
    k = min(len(r), n)
    acc = 0.0
    for t in range(k - 1, -1, -1):
      acc = float(r[t]) + discount * acc
      togo[i, t] = acc
    valid[i, :k] = True
  adv = _pooled(togo.reshape(-1, group_size, n), valid.reshape(-1, group_size, n), kind)
  return adv.reshape(B, n).astype(np.float32)


def action_logits(params, graphdef, batch, allowed, eos_id: int = -1, ans_id: int = -1,
                  legal=None):
  """(logits [B, T, V] of the distribution the sampler drew each target from, outside [B, T]).

  With `batch["branch"]`, completions share their prompt (rf_jax.rl_rows.shared_rows).
  Where `batch["no_stop"]` is set (a scratchpad before its <ans>), <eos> was not allowed;
  with `ans_id` (a scratchpad run), a second <ans> was not allowed in the answer. With
  `legal` ([families + 1, V] bool; row `batch["family"]` of each position, row 0 allowing
  everything), the sampler drew only from the family's answer alphabet: `outside` is
  -log of the mass the unrestricted model puts inside it (0 without `legal`)."""
  model = nnx.merge(graphdef, params)
  logits = allowed_logits(model(batch["inputs"], batch["positions"], batch["segment_ids"],
                                branch_BT=batch.get("branch")), allowed)
  if "no_stop" in batch:
    answered = ~batch["no_stop"].astype(bool) & (batch["action_mask"] > 0)
    logits = think_logits(logits, batch["no_stop"], answered, eos_id, ans_id)
  if legal is None:
    return logits, jnp.zeros(logits.shape[:-1], logits.dtype)
  ok = jnp.asarray(legal)[batch["family"]]
  inside = jnp.where(ok, logits, -1e9)
  outside = (jax.nn.logsumexp(logits, axis=-1)
             - jax.nn.logsumexp(inside, axis=-1))
  return inside, outside


def logprobs_and_entropy(logits_BTV, targets_BT):
  """(log-prob of each target, entropy of each position's distribution), both [B, T]."""
  logp_all = jax.nn.log_softmax(logits_BTV, axis=-1)
  logp = jnp.take_along_axis(logp_all, targets_BT[..., None], axis=-1)[..., 0]
  return logp, -(jnp.exp(logp_all) * logp_all).sum(-1)


def token_logprobs(params, graphdef, batch, allowed, eos_id: int = -1, ans_id: int = -1,
                   legal=None):
  """(log-prob of each target, entropy of each position's distribution), both [B, T], under
  the distribution the sampler drew from (`action_logits`)."""
  logits, _ = action_logits(params, graphdef, batch, allowed, eos_id, ans_id, legal)
  return logprobs_and_entropy(logits, batch["targets"])


def entropy_term(entropy_BT, mask_BT, coef: float, target):
  """What the loss adds for entropy, averaged over the actions. Without a target, a bonus
  (-coef * H) that pulls every policy toward uniform; with one, a hinge per action
  (coef * max(target - H_t, 0)) that acts only where the policy has become more certain than
  the target, so a collapsing choice is pushed back to exploring while the rest of the
  policy is left alone. Per action, not on the mean: a mean can stay high on tokens that do
  not matter (where to stop) while the answer token has collapsed. `target`: nats, one for
  all actions or one per position ([B, T])."""
  n = jnp.maximum(mask_BT.sum(), 1.0)
  if np.ndim(target) or target > 0:
    return coef * (jnp.maximum(target - entropy_BT, 0.0) * mask_BT).sum() / n
  return -coef * (entropy_BT * mask_BT).sum() / n


def action_floor_term(logits_BTV, mask_BT, share: float):
  """Mean over actions of sum over the choices a the sampler allowed of
  max(log(share / #allowed) - log p(a), 0): every allowed choice keeps at least
  share / #allowed of the probability. An entropy floor can be met by spreading mass over
  choices that do not matter while the one that does (often <eos>) starves, and the
  entropy's pull on a choice of probability p is proportional to p, so once starved it
  stays starved; this hinge pulls on log p, as hard at 1e-6 as at 1e-2."""
  ok = logits_BTV > -1e8  # what allowed_logits and the alphabets left in
  logp = jax.nn.log_softmax(logits_BTV, axis=-1)
  floor = jnp.log(share / ok.sum(-1, keepdims=True))
  below = jnp.where(ok, jnp.maximum(floor - logp, 0.0), 0.0).sum(-1)
  return (below * mask_BT).sum() / jnp.maximum(mask_BT.sum(), 1.0)


def pg_loss(params, graphdef, batch, *, allowed, clip_eps: float, kl_coef: float,
            entropy_coef: float = 0.0, entropy_target: float = 0.0, eos_id: int = -1,
            ans_id: int = -1, legal=None, alphabet_coef: float = 0.0, floors: bool = False,
            references: int = 0, action_floor: float = 0.0):
  """Token-level clipped policy-gradient loss (PPO form), optionally with a k3 KL penalty.

  batch: rows from rf_jax.rl_rows (targets, `action_mask`, per-target `advantages`), plus
  "old_logp" [B, T] when the batch is reused for several updates (ratio != 1) and
  "ref_logp" [B, T] when kl_coef > 0. Without old_logp the ratio is
  exp(logp - stop_gradient(logp)) = 1, so the gradient is REINFORCE:
  -sum_t A_t * grad log p(a_t) / #actions.

  With `legal` (rl.answer_alphabet) the policy-gradient and entropy terms are those of the
  distribution restricted to each family's answer alphabet, which the sampler drew from, and
  `alphabet_coef` times the mean `outside` (-log of the mass inside the alphabet) teaches the
  unrestricted model to keep its answers inside it, so that greedy decoding needs no mask.
  With `floors` (rl.entropy_share) the entropy hinge reads each action's floor from
  `batch["entropy_floor"]` instead of `entropy_target`. With `references` (rl.pass_rate =
  greedy), `aux["reference_wrong"]` [references + 1] counts, per reference answer
  (`batch["reference"]`), the targets whose argmax differs: 0 is a greedy exact match.
  With `action_floor` (rl.action_floor) > 0, entropy_coef also weighs `action_floor_term`.
  """
  logits, outside = action_logits(params, graphdef, batch, allowed, eos_id, ans_id, legal)
  logp, entropy = logprobs_and_entropy(logits, batch["targets"])
  mask = batch["action_mask"].astype(jnp.float32)
  n = jnp.maximum(mask.sum(), 1.0)
  old = batch.get("old_logp", jax.lax.stop_gradient(logp))
  ratio = jnp.exp(logp - old)
  adv = batch["advantages"]
  obj = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
  mean_entropy = (entropy * mask).sum() / n
  # A collapsed group (all samples alike) has equal rewards and so no policy gradient at
  # all: the entropy term keeps a from-scratch policy exploring.
  target = batch["entropy_floor"] if floors else entropy_target
  loss = -(obj * mask).sum() / n + entropy_term(entropy, mask, entropy_coef, target)
  aux = {"entropy": mean_entropy,
         "clip_fraction": ((jnp.abs(ratio - 1) > clip_eps) * mask).sum() / n}
  if action_floor > 0:
    aux["action_floor"] = action_floor_term(logits, mask, action_floor)
    loss = loss + entropy_coef * aux["action_floor"]
  if legal is not None:
    loss = loss + alphabet_coef * (outside * mask).sum() / n
    aux["outside_alphabet"] = ((1 - jnp.exp(-outside)) * mask).sum() / n
  if references:
    wrong = (jnp.argmax(logits, axis=-1) != batch["targets"]) & (batch["reference"] > 0)
    aux["reference_wrong"] = jax.ops.segment_sum(
        wrong.astype(jnp.int32).ravel(), batch["reference"].ravel(), references + 1)
  if kl_coef > 0:
    d = batch["ref_logp"] - logp
    kl = ((jnp.exp(d) - d - 1) * mask).sum() / n
    loss = loss + kl_coef * kl
    aux["kl"] = kl
  return loss, aux


def rl_step(state, rows, nt_batch=None, *, graphdef, tx, allowed, eos_id: int, clip_eps: float,
            kl_coef: float, entropy_coef: float = 0.0, entropy_target: float = 0.0,
            updates: int = 1, nt_weight: float = 0.0, nt_loss=None, ans_id: int = -1,
            legal=None, alphabet_coef: float = 0.0, floors: bool = False, references: int = 0,
            action_floor: float = 0.0):
  """`updates` optimizer steps on one batch of rollout rows (rf_jax.rl_rows); the train step
  counter moves by 1.

  With `nt_batch`, each update minimises (1 - nt_weight) * pg_loss + nt_weight * next-token
  loss (the `mixed` objective). With more than one update the first update's log-probs are
  the behaviour policy of the PPO ratio.
  """
  batch = dict(rows)
  if updates > 1:
    batch["old_logp"] = jax.lax.stop_gradient(
        token_logprobs(state["params"], graphdef, batch, allowed, eos_id, ans_id, legal)[0])
  if kl_coef > 0:
    batch["ref_logp"] = token_logprobs(state["ref_params"], graphdef, batch, allowed, eos_id,
                                      ans_id, legal)[0]

  def total(params):
    loss, aux = pg_loss(params, graphdef, batch, allowed=allowed, clip_eps=clip_eps,
                        kl_coef=kl_coef, entropy_coef=entropy_coef,
                        entropy_target=entropy_target, eos_id=eos_id, ans_id=ans_id,
                        legal=legal, alphabet_coef=alphabet_coef, floors=floors,
                        references=references, action_floor=action_floor)
    aux["pg_loss"] = loss
    if nt_batch is not None:
      nt, nt_aux = nt_loss(params, graphdef, nt_batch)
      loss = (1 - nt_weight) * loss + nt_weight * nt
      aux = {**aux, **nt_aux, "loss": nt}
    return loss, aux

  params, opt_state = state["params"], state["opt_state"]
  for _ in range(updates):  # few and static: unrolled
    (_, aux), grads = jax.value_and_grad(total, has_aux=True)(params)
    delta, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, delta)
  aux["grad_norm"] = optax.global_norm(grads)
  return {**state, "params": params, "opt_state": opt_state, "step": state["step"] + 1}, aux
