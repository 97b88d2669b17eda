"""Batched decoding of left-padded prompts: jitted prefill + `lax.while_loop` with a KV cache.

Prompts are left-padded so every row generates at the same buffer index. Pad tokens get
segment 0 and real tokens segment 1, so attention never mixes them; positions count real
tokens only, so a row's answer does not depend on how much it was padded.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rf_jax.model import init_cache, repeat_cache


def left_pad(prompts: list[list[int]], length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
  tokens = np.full((len(prompts), length), pad_id, np.int32)
  mask = np.zeros((len(prompts), length), np.int32)
  for i, p in enumerate(prompts):
    if len(p) > length:
      raise ValueError(f"prompt of {len(p)} tokens does not fit in {length}")
    tokens[i, length - len(p):] = p
    mask[i, length - len(p):] = 1
  return tokens, mask


def allowed_logits(logits, valid_vocab):
  """Logits with disallowed ids at -inf. `valid_vocab`: a count (ids below it are allowed) or
  a boolean mask over the vocabulary (`Vocab.allowed()`), padded with False to the table size."""
  V = logits.shape[-1]
  if isinstance(valid_vocab, (int, np.integer)):
    ok = jnp.arange(V) < valid_vocab
  else:
    mask = np.asarray(valid_vocab, bool)
    ok = jnp.asarray(np.pad(mask, (0, V - len(mask))))
  return jnp.where(ok, logits, -1e9)  # finite: a masked target times a zero weight stays 0


def choose(logits_BV, rng, valid_vocab, temperature: float, top_k: int):
  """Greedy when temperature == 0, else temperature / top-k sampling, over allowed ids only."""
  logits_BV = allowed_logits(logits_BV, valid_vocab)
  if temperature == 0:
    return jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
  logits_BV = logits_BV / temperature
  if top_k:
    kth = jax.lax.top_k(logits_BV, top_k)[0][:, -1:]
    logits_BV = jnp.where(logits_BV >= kth, logits_BV, -jnp.inf)
  return jax.random.categorical(rng, logits_BV, axis=-1).astype(jnp.int32)


def think_logits(logits, no_stop, answered, eos_id: int, ans_id: int = -1):
  """The scratchpad's first rule: where `no_stop` (no <ans> written yet) a row may not stop,
  and where `answered` it may not write another <ans> (the answer is read after the first,
  so a second would be an action the decoder drops: a free way to pad an answer). Masks have
  the logits' leading shape: [B] in the sampler, [B, T] in the update."""
  vocab = jnp.arange(logits.shape[-1])
  banned = (((vocab == eos_id) & no_stop[..., None].astype(bool))
            | ((vocab == ans_id) & answered[..., None].astype(bool)))
  return jnp.where(banned, -1e9, logits)


def think_token(tok_B, i, answered_B, think: int, ans_id: int):
  """The scratchpad's second rule: at completion index `think` a row without <ans> gets one."""
  return jnp.where((i == think) & ~answered_B, ans_id, tok_B)


def answer_rules(logits_BV, answered_B, legal_BV, think: int, eos_id: int, ans_id: int):
  """The logits a row may choose from: an answered row only from `legal_BV` where given, and
  the scratchpad's first rule (`think_logits`) where `think` > 0."""
  if legal_BV is not None:
    logits_BV = jnp.where(answered_B[:, None] & ~legal_BV, -1e9, logits_BV)
  return think_logits(logits_BV, ~answered_B, answered_B, eos_id, ans_id) if think else logits_BV


def prefill(model, prompt_BP, pos_BP, seg_BP, slots: int, group: int = 1):
  """(logits [B, 1 or P, V], a KV cache of `slots` holding the prompts); with `group` = G,
  each run of G rows is prefilled once from its first row and its cache repeated."""
  B, P = prompt_BP.shape
  if B % group:
    raise ValueError(f"{B} rows do not come in groups of {group}")
  cfg = model.cfg
  cache = init_cache(cfg, B // group, slots, jnp.dtype(cfg.dtype))
  # With a window, the prompt goes in window-sized chunks, so prefill is linear in its
  # length too: each chunk attends to the cached window and itself.
  chunk = cfg.attention_window if 0 < cfg.attention_window < P else P
  for start in range(0, P, chunk):
    part = slice(start, start + chunk)
    logits, cache = model(prompt_BP[::group, part], pos_BP[::group, part],
                          seg_BP[::group, part], cache)
  if group > 1:
    cache, logits = repeat_cache(cfg, cache, group), jnp.repeat(logits[:, -1:], group, axis=0)
  return logits, cache


def sample(params, prompt_BP, prompt_mask_BP, rng, limit_B=None, legal_BV=None, *, graphdef,
           max_new: int, valid_vocab, eos_id: int, temperature: float = 0.0, top_k: int = 0,
           cache_len: int = 0, think: int = 0, ans_id: int = -1, group: int = 1):
  """Generates [B, max_new] tokens; after a row's <eos> the row holds <eos>.

  The cache has `cache_len` slots (default: prompt + max_new, or the attention window if
  smaller). The loop stops early once every row has produced <eos>. With `think` = K > 0
  each row has a scratchpad: up to K tokens of its own, then `ans_id` (written by the
  model, or forced at index K), then the answer (`think_logits`, `think_token`). With
  `limit_B`, row b writes at most limit_B[b] tokens (the rest of its row holds <eos>). With
  `group` = G > 1, rows come in runs of G with the same prompt (a GRPO group), prefilled
  once per run (`prefill`).
  """
  B, P = prompt_BP.shape
  model = nnx.merge(graphdef, params)
  cfg = model.cfg
  S = cache_len or P + max_new
  if cfg.attention_window:
    S = min(S, cfg.attention_window)
  seg = prompt_mask_BP.astype(jnp.int32)
  pos = jnp.maximum(jnp.cumsum(seg, axis=1) - 1, 0)
  n_real = seg.sum(axis=1)
  logits, cache = prefill(model, prompt_BP, pos, seg, S, group)

  def pick(logits_BV, i, answered, key):
    logits_BV = answer_rules(logits_BV, answered, legal_BV, think, eos_id, ans_id)
    tok = choose(logits_BV, key, valid_vocab, temperature, top_k)
    return think_token(tok, i, answered, think, ans_id) if think else tok

  rng, key = jax.random.split(rng)
  answered = jnp.zeros((B,), bool) if think else jnp.ones((B,), bool)
  first = pick(logits[:, -1], 0, answered, key)
  out = jnp.full((B, max_new), eos_id, jnp.int32).at[:, 0].set(first)

  def cond(carry):
    i, _, _, done, _, _ = carry
    return (i < max_new) & ~jnp.all(done)

  def body(carry):
    i, cache, out, done, answered, rng = carry
    tok = jax.lax.dynamic_slice_in_dim(out, i - 1, 1, axis=1)
    step_pos = (n_real + i - 1)[:, None]
    logits, cache = model(tok, step_pos, jnp.ones_like(tok), cache)
    rng, key = jax.random.split(rng)
    nxt = pick(logits[:, -1], i, answered, key)
    nxt = jnp.where(done, eos_id, nxt)
    out = jax.lax.dynamic_update_slice_in_dim(out, nxt[:, None], i, axis=1)
    done = done | (nxt == eos_id) | (i + 1 >= limit)
    return i + 1, cache, out, done, answered | (nxt == ans_id), rng

  limit = jnp.full((B,), max_new, jnp.int32) if limit_B is None else limit_B
  carry = (jnp.int32(1), cache, out, (first == eos_id) | (limit <= 1),
           answered | (first == ans_id), rng)
  return jax.lax.while_loop(cond, body, carry)[2]


def decode_recompute(params, prompt_BP, prompt_mask_BP, *, graphdef, max_new: int,
                     valid_vocab):
  """Greedy tokens by re-running the whole sequence at every step: the slow reference."""
  B, P = prompt_BP.shape
  model = nnx.merge(graphdef, params)
  buf = jnp.concatenate([prompt_BP, jnp.zeros((B, max_new), prompt_BP.dtype)], axis=1)
  seg = jnp.concatenate([prompt_mask_BP, jnp.ones((B, max_new), prompt_mask_BP.dtype)], axis=1)
  pos = jnp.maximum(jnp.cumsum(seg, axis=1) - 1, 0)

  def body(i, buf):
    logits = model(buf, pos, seg)[:, P - 1 + i]
    nxt = choose(logits, None, valid_vocab, 0.0, 0).astype(buf.dtype)
    return jax.lax.dynamic_update_slice_in_dim(buf, nxt[:, None], P + i, axis=1)

  return jax.lax.fori_loop(0, max_new, body, buf)[:, P:]
