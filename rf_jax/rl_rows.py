"""Rollouts as training rows for the policy-gradient update (host side, numpy).

A sample is its prompt's tokens followed by its completion up to and including the first
<eos>. `padded_rows` gives each sample its own row of one fixed length (simple; most of the
row is padding when prompts and answers are short); `packed_rows` places samples one after
another in rows of `row_len` tokens with a segment id each, as next-token training packs
examples, so the update costs what the samples hold rather than the worst case;
`shared_rows` packs too, but writes each prompt once, followed by the completions that
continue it, each in a branch of its own (`branch` 0: the prompt, b > 0: one completion),
which attends to the prompt and to itself (rf_jax.attention.branch_mask): a group of G
samples costs one prompt and G answers instead of G prompts and G answers.

Every row array is aligned to the model's targets: `action_mask` marks the completion tokens
the policy chose (not a scratchpad's forced <ans>), `advantages` holds each action's
advantage, `no_stop` marks the positions where the sampler did not allow <eos> (a scratchpad
before its <ans>), so the update scores actions under the distribution they were drawn from,
`family` (1 + the task's index, 0 elsewhere) marks the answer tokens that the sampler drew
from their family's answer alphabet (rl.answer_alphabet), and `reference` (1 + its index)
marks the answer of a reference sample: a prompt's reference answer, not an action, whose
teacher-forced argmax measures the greedy policy (rl.pass_rate = greedy).
"""
from __future__ import annotations

import dataclasses

import numpy as np

FLOAT_KEYS = ("advantages", "entropy_floor")
ROW_KEYS = ("inputs", "targets", "positions", "segment_ids", "action_mask", "advantages",
            "no_stop", "family", "entropy_floor", "reference")
SHARED_KEYS = ROW_KEYS + ("branch",)


@dataclasses.dataclass(frozen=True)
class Sample:
  """One sample's tokens and, per completion token, what the update needs to know."""
  tokens: np.ndarray      # prompt + completion (up to the first <eos>)
  n_prompt: int
  action: np.ndarray      # [completion] bool: chosen by the policy
  advantage: np.ndarray   # [completion] float
  no_stop: np.ndarray     # [completion] bool: <eos> was not allowed here
  family: int             # 1 + task index where the answer was drawn from its alphabet
  floor: np.ndarray       # [completion] float: each action's entropy floor (nats)
  reference: int = 0      # > 0: a reference answer (1 + its index), scored but not trained


def completion_length(ids: np.ndarray, eos_id: int) -> int:
  hits = np.flatnonzero(ids == eos_id)
  return int(hits[0]) + 1 if len(hits) else len(ids)


def scratchpad_flags(ids: np.ndarray, ans_id: int, think: int) -> tuple[np.ndarray, np.ndarray]:
  """(chosen, no_stop) per completion token under the sampler's scratchpad rules: before the
  first <ans> <eos> was not allowed, and an <ans> at index `think` after none was forced."""
  n = len(ids)
  chosen, no_stop = np.ones(n, bool), np.zeros(n, bool)
  if think <= 0:
    return chosen, no_stop
  hits = np.flatnonzero(ids == ans_id)
  first = int(hits[0]) if len(hits) else n
  no_stop[:min(first + 1, n)] = True
  if first == think < n:
    chosen[think] = False  # the sampler wrote it, not the policy
  return chosen, no_stop


def make_samples(prompt_ids: list[list[int]], completions: np.ndarray, advantages: np.ndarray,
                 eos_id: int, ans_id: int = -1, think: int = 0,
                 family: int = 0, floor: float = 0.0, think_floor: float = 0.0) -> list[Sample]:
  """`prompt_ids[i]` and `completions[i]` [N] of each sample; `advantages` [S] (one per
  sample) or [S, N] (one per completion token); `family` as in `Sample`; entropy floors
  `floor` for the answer's actions and `think_floor` for a scratchpad's."""
  out = []
  for i, ids in enumerate(completions):
    n = completion_length(ids, eos_id)
    ids = np.asarray(ids[:n], np.int32)
    adv = advantages[i] if np.ndim(advantages) == 2 else np.full(len(completions[i]), advantages[i])
    chosen, no_stop = scratchpad_flags(ids, ans_id, think)
    out.append(Sample(np.concatenate([np.asarray(prompt_ids[i], np.int32), ids]),
                      len(prompt_ids[i]), chosen, np.asarray(adv[:n], np.float32), no_stop,
                      family, np.where(no_stop, think_floor, floor).astype(np.float32)))
  return out


def reference_sample(prompt_ids: list[int], answer_ids: list[int], index: int) -> Sample:
  """The reference answer of a prompt (its ids end with <eos>) as reference `index`: no
  actions, so the update only reads whether the unrestricted argmax (what greedy decoding
  writes) reproduces it."""
  n = len(answer_ids)
  return Sample(np.asarray(list(prompt_ids) + list(answer_ids), np.int32), len(prompt_ids),
                np.zeros(n, bool), np.zeros(n, np.float32), np.zeros(n, bool), 0,
                np.zeros(n, np.float32), index + 1)


def empty_rows(n_rows: int, length: int, pad_id: int,
               keys: tuple = ROW_KEYS) -> dict[str, np.ndarray]:
  rows = {k: np.zeros((n_rows, length), np.float32 if k in FLOAT_KEYS else np.int32)
          for k in keys}
  rows["inputs"][:], rows["targets"][:] = pad_id, pad_id
  return rows


def place(rows: dict, r: int, at: int, sample: Sample, segment: int, start: int = 0,
          branch: int = 0) -> int:
  """Writes `sample`'s tokens from `start` on into row `r` from column `at` (with `branch`
  where the rows have branches); returns the next free column."""
  t = sample.tokens[start:]
  n = len(t) - 1
  span = slice(at, at + n)
  rows["inputs"][r, span], rows["targets"][r, span] = t[:-1], t[1:]
  rows["positions"][r, span] = np.arange(start, start + n)
  rows["segment_ids"][r, span] = segment
  if "branch" in rows:
    rows["branch"][r, span] = branch
  c = slice(at + sample.n_prompt - 1 - start, at + n)  # targets that are completion tokens
  rows["action_mask"][r, c] = sample.action
  rows["advantages"][r, c] = sample.advantage
  rows["no_stop"][r, c] = sample.no_stop
  rows["family"][r, c] = sample.family * (sample.action & ~sample.no_stop)
  rows["entropy_floor"][r, c] = sample.floor
  rows["reference"][r, c] = sample.reference
  return at + n


def padded_rows(samples: list[Sample], prompt_len: int, max_new: int,
                pad_id: int) -> dict[str, np.ndarray]:
  """One row per sample, prompts left-padded to `prompt_len` so completions line up."""
  rows = empty_rows(len(samples), prompt_len + max_new - 1, pad_id)
  for r, s in enumerate(samples):
    place(rows, r, prompt_len - s.n_prompt, s, 1)
  return rows


def bucket_rows(n: int, multiple: int) -> int:
  """`n` rounded up to 4, 5, 6 or 7 times a power of two (below 8: itself), then to a
  multiple of `multiple`: at most a quarter more rows than needed, and four sizes per
  doubling, so a run compiles the update a few times rather than once per row count."""
  step = 1 << max(0, n.bit_length() - 3)
  size = -(-n // step) * step
  return -(-size // multiple) * multiple


def packed_rows(samples: list[Sample], row_len: int, pad_id: int,
                multiple: int = 1) -> dict[str, np.ndarray]:
  """Samples packed first-fit into rows of `row_len` targets; the row count is bucketed
  (`bucket_rows`) and a multiple of `multiple` (the data-parallel size)."""
  free, where = [], []
  for s in samples:
    need = len(s.tokens) - 1
    if need > row_len:
      raise ValueError(f"a sample of {need + 1} tokens does not fit a packed row of {row_len}")
    r = next((k for k, f in enumerate(free) if f >= need), None)
    if r is None:
      free.append(row_len)
      r = len(free) - 1
    where.append((r, row_len - free[r]))
    free[r] -= need
  rows = empty_rows(bucket_rows(len(free), multiple), row_len, pad_id)
  for k, (s, (r, at)) in enumerate(zip(samples, where)):
    place(rows, r, at, s, k + 1)
  return rows


def prompt_sample(sample: Sample) -> Sample:
  """`sample`'s prompt alone, as written once for the branches that share it."""
  empty = np.zeros(0, np.float32)
  return Sample(sample.tokens[:sample.n_prompt], sample.n_prompt, empty.astype(bool), empty,
                empty.astype(bool), 0, empty)


def shared_rows(samples: list[Sample], row_len: int, pad_id: int,
                multiple: int = 1) -> dict[str, np.ndarray]:
  """Samples packed into rows of `row_len` targets with each prompt written once per row
  it appears in, then its samples' completions as branches (samples with equal prompt
  tokens share, wherever they are in `samples`). A prompt with more completions than its
  row holds continues in another row, with its prompt written again. The row count is
  bucketed as in `packed_rows`."""
  trees: dict[tuple, list[Sample]] = {}
  for s in samples:
    trees.setdefault(tuple(s.tokens[:s.n_prompt]), []).append(s)
  need = lambda s: len(s.tokens) - s.n_prompt  # a branch: the prompt's last token on
  free, plan, segment = [], [], 0  # plan: (row, column, sample, segment, start, branch)
  for members in trees.values():
    head = prompt_sample(members[0])
    i = 0
    while i < len(members):
      first = head.n_prompt - 1 + need(members[i])
      if first > row_len:
        raise ValueError(f"a sample of {len(members[i].tokens)} tokens does not fit a "
                         f"packed row of {row_len}")
      r = next((k for k, f in enumerate(free) if f >= first), None)
      if r is None:
        free.append(row_len)
        r = len(free) - 1
      segment, branch = segment + 1, 0
      plan.append((r, row_len - free[r], head, segment, 0, 0))
      free[r] -= head.n_prompt - 1
      while i < len(members) and need(members[i]) <= free[r]:
        branch += 1
        plan.append((r, row_len - free[r], members[i], segment, members[i].n_prompt - 1,
                     branch))
        free[r] -= need(members[i])
        i += 1
  rows = empty_rows(bucket_rows(len(free), multiple), row_len, pad_id, SHARED_KEYS)
  for r, at, s, segment, start, branch in plan:
    place(rows, r, at, s, segment, start, branch)
  return rows
