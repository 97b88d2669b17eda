"""Batched decoding of left-padded prompts.

Prompts are left-padded so every row generates at the same buffer index. Pad tokens
get segment 0 and real tokens segment 1, so attention never mixes them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def left_pad(prompts: list[list[int]], length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
  tokens = np.full((len(prompts), length), pad_id, np.int32)
  mask = np.zeros((len(prompts), length), np.int32)
  for i, p in enumerate(prompts):
    if len(p) > length:
      raise ValueError(f"prompt of {len(p)} tokens does not fit in {length}")
    tokens[i, length - len(p):] = p
    mask[i, length - len(p):] = 1
  return tokens, mask


def greedy_decode(params, prompt_BP, prompt_mask_BP, *, graphdef, max_new: int,
                  valid_vocab: int):
  """Greedy tokens [B, max_new] by full recomputation at each step (simple, exact)."""
  B, P = prompt_BP.shape
  model = nnx.merge(graphdef, params)
  buf = jnp.concatenate([prompt_BP, jnp.zeros((B, max_new), prompt_BP.dtype)], axis=1)
  seg = jnp.concatenate([prompt_mask_BP, jnp.ones((B, max_new), prompt_mask_BP.dtype)], axis=1)
  pos = jnp.maximum(jnp.cumsum(seg, axis=1) - 1, 0)
  vocab_ok = jnp.arange(model.cfg.vocab_size) < valid_vocab

  def body(i, buf):
    logits = model(buf, pos, seg)[:, P - 1 + i]
    nxt = jnp.argmax(jnp.where(vocab_ok, logits, -jnp.inf), axis=-1).astype(buf.dtype)
    return jax.lax.dynamic_update_slice_in_dim(buf, nxt[:, None], P + i, axis=1)

  buf = jax.lax.fori_loop(0, max_new, body, buf)
  return buf[:, P:]
