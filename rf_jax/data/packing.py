"""Pure helpers: an example becomes tokens + loss mask; examples pack into fixed rows."""
from __future__ import annotations

import numpy as np

from rf_jax.tasks import Example
from rf_jax.vocab import Vocab


def encode_prompt(vocab: Vocab, prompt: str) -> list[int]:
  """What the model is given: <bos> prompt <sep>."""
  return [vocab.bos_id] + vocab.encode(prompt) + [vocab.sep_id]


def encode_target(vocab: Vocab, ex: Example, use_trace: bool) -> list[int]:
  """What the model must produce after <sep>: [trace <ans>] answer <eos>."""
  out = []
  if use_trace and ex.trace:
    out = vocab.encode(ex.trace) + [vocab.ans_id]
  return out + vocab.encode(ex.answer) + [vocab.eos_id]


def encode_example(vocab: Vocab, ex: Example, use_trace: bool) -> tuple[list[int], list[int]]:
  """Token ids and a per-token 'is a target' flag (the output part only)."""
  prompt, target = encode_prompt(vocab, ex.prompt), encode_target(vocab, ex, use_trace)
  return prompt + target, [0] * len(prompt) + [1] * len(target)


def pack_row(seqs: list[tuple], seq_len: int, pad_id: int) -> dict:
  """Packs (ids, flags[, task_index, level]) sequences into one row of `seq_len` inputs.

  Returns inputs/targets/positions/segment_ids/loss_mask/task_ids/levels, each [seq_len].
  Segment 0 is padding; positions restart at 0 in each segment; a target counts in the
  loss only if it is an output token of the same segment as its input. task_ids and
  levels (-1 / 0 on padding) let the step report accuracy per task and level.
  """
  n = seq_len + 1
  tokens = np.full(n, pad_id, np.int32)
  out_flag = np.zeros(n, np.int32)
  seg = np.zeros(n, np.int32)
  pos = np.zeros(n, np.int32)
  task = np.full(n, -1, np.int32)
  level = np.zeros(n, np.int32)
  at = 0
  for i, (ids, flags, *tag) in enumerate(seqs):
    k = len(ids)
    if tag:
      task[at:at + k], level[at:at + k] = tag
    if at + k > n:
      raise ValueError(f"sequences need {at + k} tokens, row has {n}")
    tokens[at:at + k] = ids
    out_flag[at:at + k] = flags
    seg[at:at + k] = i + 1
    pos[at:at + k] = np.arange(k)
    at += k
  same_segment = (seg[1:] == seg[:-1]) & (seg[:-1] > 0)
  return {
      "inputs": tokens[:-1],
      "targets": tokens[1:],
      "positions": pos[:-1],
      "segment_ids": seg[:-1],
      "loss_mask": (out_flag[1:].astype(bool) & same_segment).astype(np.float32),
      "task_ids": task[:-1],
      "levels": level[:-1],
  }
