"""Greedy-decoding evaluation: exact match and partial credit per task and level."""
from __future__ import annotations

import dataclasses
import functools

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


def answer_text(vocab: Vocab, ids, use_trace: bool) -> str:
  """The scored part of a generation: up to <eos>, after the last <ans> if traces are on."""
  ids = [int(i) for i in ids]
  if vocab.eos_id in ids:
    ids = ids[:ids.index(vocab.eos_id)]
  if use_trace and vocab.ans_id in ids:
    ids = ids[len(ids) - ids[::-1].index(vocab.ans_id):]
  return vocab.decode(ids)


@dataclasses.dataclass
class EvalSet:
  keys: list[tuple[str, int]]  # (task, level) of each row
  examples: list[tasks_lib.Example]
  prompts: np.ndarray
  prompt_mask: np.ndarray
  max_new: int


def make_eval_set(task_names, levels, n_per: int, seed: int, vocab: Vocab,
                  use_trace: bool, pad_rows_to: int = 1) -> EvalSet:
  keys, examples = [], []
  for name in task_names:
    task = tasks_lib.get(name)
    for level in levels:
      for i in range(n_per):
        keys.append((name, level))
        examples.append(tasks_lib.make_example(task, seed + EVAL_SEED_OFFSET, i, level))
  prompts = [encode_prompt(vocab, ex.prompt) for ex in examples]
  max_new = max(len(encode_target(vocab, ex, use_trace)) for ex in examples)
  # Round shapes so eval sets of similar size share one compiled program.
  P = _round_up(max(len(p) for p in prompts), 8)
  rows = _round_up(len(prompts), pad_rows_to)
  prompts += [[vocab.bos_id]] * (rows - len(prompts))
  tokens, mask = left_pad(prompts, P, vocab.pad_id)
  return EvalSet(keys, examples, tokens, mask, _round_up(max_new, 4))


class GreedyEvaluator:
  """Decodes a fixed eval set and reports exact-match accuracy and mean score."""

  def __init__(self, eval_set: EvalSet, graphdef, mesh, vocab: Vocab, use_trace: bool):
    self.eval_set, self.vocab, self.use_trace, self.mesh = eval_set, vocab, use_trace, mesh
    sh = batch_sharding(mesh)
    self._decode = jax.jit(
        functools.partial(sample, graphdef=graphdef, max_new=eval_set.max_new,
                          valid_vocab=vocab.size, eos_id=vocab.eos_id),
        in_shardings=(None, sh, sh, None), out_shardings=sh)
    self._sharding = sh

  def generate(self, params) -> np.ndarray:
    es = self.eval_set
    with jax.set_mesh(self.mesh):
      out = self._decode(params, jax.device_put(es.prompts, self._sharding),
                         jax.device_put(es.prompt_mask, self._sharding), jax.random.key(0))
    return np.asarray(multihost_utils.process_allgather(out, tiled=True))

  def __call__(self, params) -> dict[str, float]:
    es = self.eval_set
    out = self.generate(params)
    exact, score = {}, {}
    for row, ((name, level), ex) in enumerate(zip(es.keys, es.examples)):
      text = answer_text(self.vocab, out[row], self.use_trace)
      s = tasks_lib.get(name).score(ex, text)
      exact.setdefault((name, level), []).append(float(text == ex.answer))
      score.setdefault((name, level), []).append(s)
    metrics = {}
    for key in exact:
      name, level = key
      metrics[f"eval/{name}/L{level}/exact"] = float(np.mean(exact[key]))
      metrics[f"eval/{name}/L{level}/score"] = float(np.mean(score[key]))
    metrics["eval/mean_exact"] = float(np.mean([np.mean(v) for v in exact.values()]))
    return metrics


def evaluator_for(task_names, levels, n_per, seed, vocab, use_trace, graphdef, mesh):
  es = make_eval_set(task_names, levels, n_per, seed, vocab, use_trace,
                     pad_rows_to=data_parallel_size(mesh) * jax.process_count())
  return GreedyEvaluator(es, graphdef, mesh, vocab, use_trace)
