"""Greedy decoding of task items and their scores: the core of every evaluation.

An `Item` is one prompt with its reference answer, the key its result is reported under and
its scoring function. `GreedyEvaluator` decodes a fixed list of items (bucketed by prompt
length, so each bucket compiles once) and averages exact match and partial credit per key.
`TrainingEvaluator` is the trainer's periodic evaluation built on it.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from rf_jax import tasks as tasks_lib
from rf_jax.data.packing import encode_prompt, encode_target
from rf_jax.sampling import left_pad, sample
from rf_jax.sharding import batch_sharding, data_parallel_size
from rf_jax.vocab import Vocab

EVAL_SEED_OFFSET = 1_000_003  # eval items come from another seed than training rows


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


def bucket_length(n: int, bucket: int) -> int:
  """The padded length of an n-token prompt: a multiple of `bucket` (32: below 256 tokens),
  or of an eighth of the power of two above n (64 from 256 to 511 tokens, 128 to 1023, ...),
  so that long prompts (an esolang's description and examples) share few compiled shapes
  for at most 25% more padding."""
  return _round_up(n, max(bucket, 1 << max(n.bit_length() - 3, 0)))


def chunks(idx: list[int], most: int, multiple: int) -> list[tuple[list[int], int]]:
  """`idx` in equal chunks of at most about `most` rows, each padded to `size` rows (a
  multiple of `multiple`): (chunk, size) pairs that all share the same size."""
  n = -(-len(idx) // max(most, multiple))
  size = _round_up(-(-len(idx) // n), multiple)
  return [(idx[k:k + size], size) for k in range(0, len(idx), size)]


def answer_text(vocab: Vocab, ids, use_trace: bool, scratchpad: int = 0) -> str:
  """The scored part of a generation: up to <eos>; after the first <ans> with a scratchpad
  (nothing if it wrote none), after the last <ans> if traces are on."""
  ids = [int(i) for i in ids]
  if vocab.eos_id in ids:
    ids = ids[:ids.index(vocab.eos_id)]
  if scratchpad:
    return vocab.decode(ids[ids.index(vocab.ans_id) + 1:]) if vocab.ans_id in ids else ""
  if use_trace and vocab.ans_id in ids:
    ids = ids[len(ids) - ids[::-1].index(vocab.ans_id):]
  return vocab.decode(ids)


def scratchpad_of(config) -> int:
  """The scratchpad a run's model writes before its answers (rl.scratchpad; 0 in runs saved
  before there was one)."""
  return int(config.get("rl", {}).get("scratchpad", 0))


def scratchpad_tokens(scratchpad: int) -> int:
  """Tokens a scratchpad adds to a generation: its own and the <ans> that closes it."""
  return scratchpad + 1 if scratchpad else 0


def raw_text(vocab: Vocab, ids) -> str:
  """Everything a generation wrote up to <eos>, with each <ans> shown (where a trace or a
  scratchpad ends)."""
  ids = [int(i) for i in ids]
  if vocab.eos_id in ids:
    ids = ids[:ids.index(vocab.eos_id)]
  parts, part = [], []
  for i in ids + [vocab.ans_id]:
    if i == vocab.ans_id:
      parts.append(vocab.decode(part))
      part = []
    else:
      part.append(i)
  return vocab.tokens[vocab.ans_id].join(parts)


@dataclasses.dataclass
class Item:
  key: tuple  # what the result is reported under
  example: tasks_lib.Example
  score: Callable[[tasks_lib.Example, str], float]
  max_new: int = 0              # tokens to decode; 0: as many as the reference answer needs
  exact_by_score: bool = False  # exact match is a score of 1.0, not the reference's text


class GreedyEvaluator:
  """Decodes a fixed list of items (bucketed by prompt length) and scores them."""

  def __init__(self, items: list[Item], graphdef, mesh, vocab: Vocab, use_trace: bool,
               bucket: int = 32, scratchpad: int = 0, max_tokens: int = 1 << 16):
    """`max_tokens` bounds the prompt tokens of one decoding call (its memory): a bucket with
    more rows is decoded in equal chunks, which share one compiled shape."""
    self.items, self.vocab, self.use_trace, self.mesh = items, vocab, use_trace, mesh
    self.scratchpad = scratchpad
    self._sh = batch_sharding(mesh)
    rows_mult = data_parallel_size(mesh) * jax.process_count()
    prompts = [encode_prompt(vocab, it.example.prompt) for it in items]
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
      by_len.setdefault(bucket_length(len(p), bucket), []).append(i)
    self._buckets = []
    for P, idx in sorted(by_len.items()):
      max_new = _round_up(max(items[i].max_new or
                              len(encode_target(vocab, items[i].example, use_trace))
                              for i in idx) + scratchpad_tokens(scratchpad), 8)
      for chunk, size in chunks(idx, max(1, max_tokens // P), rows_mult):
        rows = [prompts[i] for i in chunk]
        tokens, mask = left_pad(rows + [[vocab.bos_id]] * (size - len(rows)), P, vocab.pad_id)
        self._buckets.append((chunk, tokens, mask, max_new))
    self._decode = functools.lru_cache(maxsize=None)(lambda max_new: jax.jit(
        functools.partial(sample, graphdef=graphdef, max_new=max_new,
                          valid_vocab=vocab.allowed(ans=use_trace or scratchpad > 0),
                          eos_id=vocab.eos_id, think=scratchpad, ans_id=vocab.ans_id),
        in_shardings=(None, self._sh, self._sh, None), out_shardings=self._sh))

  def generate(self, params) -> list[str]:
    texts = [""] * len(self.items)
    with jax.set_mesh(self.mesh):
      for idx, tokens, mask, max_new in self._buckets:
        out = self._decode(max_new)(params, jax.device_put(tokens, self._sh),
                                    jax.device_put(mask, self._sh), jax.random.key(0))
        out = np.asarray(multihost_utils.process_allgather(out, tiled=True))
        for row, i in enumerate(idx):
          texts[i] = answer_text(self.vocab, out[row], self.use_trace, self.scratchpad)
    return texts

  def results(self, params) -> dict[tuple, dict[str, float]]:
    """key -> {"exact": mean exact match, "score": mean partial credit, "n": count}."""
    self.last_outputs = self.generate(params)
    return score_outputs(self.items, self.last_outputs)


def score_outputs(items: list[Item], texts: list[str]) -> dict[tuple, dict[str, float]]:
  """Each item's output scored, averaged per key: {"exact", "score", "n"}. Exact match is
  the reference's text, or a score of 1.0 for items with many right outputs."""
  acc: dict[tuple, list] = {}
  for it, text in zip(items, texts):
    score = float(it.score(it.example, text))
    exact = score == 1.0 if it.exact_by_score else text == it.example.answer
    acc.setdefault(it.key, []).append((float(exact), score))
  return {k: {"exact": float(np.mean([e for e, _ in v])),
              "score": float(np.mean([s for _, s in v])), "n": len(v)}
          for k, v in acc.items()}


def task_items(task_names, levels, n_per: int, seed: int) -> list[Item]:
  """`n_per` held-out examples of every family at every level, keyed (family, level)."""
  items = []
  for name in task_names:
    task = tasks_lib.get(name)
    for level in levels:
      for i in range(n_per):
        ex = tasks_lib.make_example(task, seed + EVAL_SEED_OFFSET, i, level)
        items.append(Item((name, level), ex, task.score, exact_by_score=task.many_answers))
  return items


class TrainingEvaluator:
  """The trainer's periodic eval: exact match per task and level, as flat metrics."""

  def __init__(self, task_names, levels, n_per, seed, vocab, use_trace, graphdef, mesh,
               scratchpad: int = 0):
    self._eval = GreedyEvaluator(task_items(task_names, levels, n_per, seed), graphdef, mesh,
                                 vocab, use_trace, scratchpad=scratchpad)

  def __call__(self, params) -> dict[str, float]:
    res = self._eval.results(params)
    metrics = {}
    for (name, level), r in res.items():
      metrics[f"eval/{name}/L{level}/exact"] = r["exact"]
      metrics[f"eval/{name}/L{level}/score"] = r["score"]
    metrics["eval/mean_exact"] = float(np.mean([r["exact"] for r in res.values()]))
    return metrics

  def samples(self) -> list[dict]:
    """The prompts and greedy outputs of the last evaluation."""
    return [{"task": it.key[0], "level": it.key[1], "prompt": it.example.prompt,
             "answer": it.example.answer, "output": out}
            for it, out in zip(self._eval.items, self._eval.last_outputs)]
