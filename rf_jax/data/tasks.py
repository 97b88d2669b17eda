"""Index-addressable source of packed rows drawn from a weighted task mixture.

Row `i` is a pure function of (seed, i, curriculum history): the tasks, levels and
examples in it come from RNGs keyed by the row index, and its levels from the curriculum
at step i // batch_size. So the grain iterator position plus the curriculum state is the
whole data state: resume never replays or skips, and a process reads its own rows by
slicing the index space.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Sequence

import numpy as np

from rf_jax import tasks as tasks_lib
from rf_jax.curriculum import Curriculum
from rf_jax.data.packing import encode_example, pack_row
from rf_jax.errors import ConfigError
from rf_jax.vocab import Vocab

MAX_EXAMPLES_PER_ROW = 4096  # keeps example indices of different rows disjoint


@dataclasses.dataclass(frozen=True)
class TaskMixture:
  """Task names and sampling weights; with `end_weights` the weights move linearly from
  `weights` at step 0 to `end_weights` at `total_steps` (phase 2: symbolic to verbal)."""
  names: tuple[str, ...]
  weights: tuple[float, ...]
  end_weights: tuple[float, ...] | None = None
  total_steps: int = 1

  @classmethod
  def build(cls, names: Sequence[str], weights: Sequence[float] | None,
            level_range: Sequence[int], end_weights: Sequence[float] | None = None,
            total_steps: int = 1) -> "TaskMixture":
    names = tuple(names)
    if not names:
      raise ConfigError("data.tasks is empty; name at least one task")
    found = [tasks_lib.get(n) for n in names]  # raises on an unknown name
    weights = _check_weights(weights, names, "data.weights")
    end = _check_weights(end_weights, names, "data.weights_end") if end_weights else None
    lo, hi = (int(x) for x in level_range)
    for t in found:
      tasks_lib.check_level(t, lo)
      tasks_lib.check_level(t, hi)
    return cls(names, weights, end, max(1, int(total_steps)))

  def probabilities(self, step: int) -> np.ndarray:
    w = np.asarray(self.weights, np.float64)
    if self.end_weights is not None:
      a = min(max(step / self.total_steps, 0.0), 1.0)
      w = (1 - a) * w + a * np.asarray(self.end_weights, np.float64)
    return w / w.sum()


def _check_weights(weights, names, field: str) -> tuple[float, ...]:
  weights = tuple(float(w) for w in (weights or [1.0] * len(names)))
  if len(weights) != len(names) or min(weights) < 0 or sum(weights) <= 0:
    raise ConfigError(f"{field} {weights} must be {len(names)} non-negative numbers "
                      "with a positive sum, one per task in data.tasks")
  return weights


def encode_task_example(vocab: Vocab, name: str, level: int, ex, use_trace: bool):
  """encode_example, naming the task and level when a string does not fit the vocabulary."""
  try:
    return encode_example(vocab, ex, use_trace)
  except ConfigError as e:
    raise ConfigError(f"task {name!r} at level {level}: {e}") from None


def check_vocabulary(vocab: Vocab, task_names, levels, seed: int, use_trace: bool,
                     per_level: int = 8) -> None:
  """Encodes a few examples of every task at every level, so that a user task that writes a
  character outside the vocabulary fails before training, not in a prefetch thread."""
  for name in task_names:
    task = tasks_lib.get(name)
    for level in levels:
      for index in range(per_level):
        encode_task_example(vocab, name, level, tasks_lib.make_example(task, seed, index, level),
                            use_trace)


class PackedTaskSource:
  """grain random-access source: `src[i]` is packed row i (infinite in practice)."""

  def __init__(self, mixture: TaskMixture, curriculum: Curriculum, vocab: Vocab, seq_len: int,
               seed: int, use_trace: bool, batch_size: int):
    self._tasks = [tasks_lib.get(n) for n in mixture.names]
    self._mixture, self._curriculum, self._vocab = mixture, curriculum, vocab
    self._seq_len, self._seed, self._use_trace = seq_len, seed, use_trace
    self._batch_size = batch_size

  def __len__(self) -> int:
    return sys.maxsize

  def __getitem__(self, index: int) -> dict:
    rng = np.random.default_rng([self._seed, index])
    step = index // self._batch_size
    p = self._mixture.probabilities(step)
    seqs, used = [], 0
    for k in range(MAX_EXAMPLES_PER_ROW):
      t = int(rng.choice(len(self._tasks), p=p))
      task = self._tasks[t]
      level = self._curriculum.draw(rng, task.name, step)
      ex = tasks_lib.make_example(task, self._seed, index * MAX_EXAMPLES_PER_ROW + k, level)
      ids, flags = encode_task_example(self._vocab, task.name, level, ex, self._use_trace)
      if used + len(ids) > self._seq_len + 1:
        if not seqs:
          raise ConfigError(f"an example of task {task.name!r} at level {level} has "
                            f"{len(ids)} tokens, more than data.seq_len+1={self._seq_len + 1}; "
                            "raise data.seq_len or lower the levels")
        break
      seqs.append((ids, flags, t, level))
      used += len(ids)
    return pack_row(seqs, self._seq_len, self._vocab.pad_id)

  def __repr__(self) -> str:  # grain logs sources by repr
    return f"PackedTaskSource(tasks={self._mixture.names}, seq_len={self._seq_len})"
