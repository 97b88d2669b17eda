"""A run's input from its config: vocabulary (given), tasks, curriculum, mixture, packed-row
source, and the grain iterator over it. Reads and packs data; never runs the model."""
from __future__ import annotations

import dataclasses

from rf_jax import plugins
from rf_jax import tasks as tasks_lib
from rf_jax.config import names, numbers
from rf_jax.curriculum import Curriculum
from rf_jax.data import text as text_lib
from rf_jax.data.pipeline import make_iterator
from rf_jax.data.tasks import PackedTaskSource, TaskMixture, check_vocabulary
from rf_jax.errors import ConfigError
from rf_jax.focus import Focus
from rf_jax.vocab import Vocab


def make_curriculum(config, task_names) -> Curriculum:
  c = config.curriculum
  focus = None
  if c.focus:
    focus = Focus(tuple(task_names), int(c.focus), float(c.focus_share), int(c.focus_window),
                  float(c.focus_gain), float(c.raise_at), int(c.focus_patience),
                  float(c.focus_keep))
  return Curriculum(
      tuple(task_names), int(config.data.levels[0]), int(config.data.levels[1]),
      kind=c.kind, total_steps=config.train.steps, mix_lower=c.mix_lower,
      raise_at=c.raise_at, lower_at=c.lower_at, min_examples=c.min_examples,
      # longer than the prefetch buffer: see rf_jax/curriculum.py
      lag=config.data.prefetch + 4, focus=focus)


def make_mixture(config, task_names) -> TaskMixture:
  d = config.data
  return TaskMixture.build(task_names, numbers(d.weights) or None, d.levels,
                           numbers(d.weights_end) or None, config.train.steps)


def make_source(config, vocab: Vocab, curriculum: Curriculum, mixture: TaskMixture):
  """(grain source of packed rows, fixed validation rows or None) for data.source."""
  d = config.data
  tasks = PackedTaskSource(mixture, curriculum, vocab, d.seq_len, config.seed, d.use_trace,
                           config.train.batch_size)
  if d.source == "tasks":
    return tasks, None
  if d.source != "text":
    raise ConfigError(f"data.source must be 'tasks' or 'text', got {d.source!r}")
  docs = text_lib.load_documents(d.text_files, d.text_field)
  train_docs, val_docs = text_lib.split_documents(docs, d.validation_fraction, config.seed)
  text = text_lib.TextSource(train_docs, vocab, d.seq_len, config.seed)
  val = text_lib.TextSource(val_docs, vocab, d.seq_len, config.seed).rows(d.validation_rows)
  return text_lib.ReplaySource(text, tasks, d.replay_fraction, config.seed), val


@dataclasses.dataclass
class Inputs:
  task_names: tuple[str, ...]
  eval_names: tuple[str, ...]
  curriculum: Curriculum
  mixture: TaskMixture
  source: object           # grain source of packed rows
  val_rows: dict | None    # fixed validation rows of a text phase

  def iterator(self, config, process_index: int, process_count: int, start_step: int = 0):
    return make_iterator(self.source, config.train.batch_size, process_index, process_count,
                         config.data.num_threads, config.data.prefetch, start_step=start_step)


def build_inputs(config, vocab: Vocab) -> Inputs:
  """Checks every name and level up front, then builds the source (one row is built here, so
  an example that cannot fit fails now, not in a prefetch thread)."""
  plugins.import_modules(config.data.task_modules, "data.task_modules")
  task_names = names(config.data.tasks)
  eval_names = names(config.train.eval_tasks) or task_names
  for level in config.train.eval_levels:
    for name in eval_names:
      tasks_lib.check_level(tasks_lib.get(name), level)
  lo, hi = int(config.data.levels[0]), int(config.data.levels[1])
  mixture = make_mixture(config, task_names)  # checks the names and levels first
  check_vocabulary(vocab, task_names, range(lo, hi + 1), config.seed, config.data.use_trace)
  check_vocabulary(vocab, eval_names, config.train.eval_levels, config.seed, config.data.use_trace)
  curriculum = make_curriculum(config, task_names)
  source, val_rows = make_source(config, vocab, curriculum, mixture)
  source[0]
  return Inputs(task_names, eval_names, curriculum, mixture, source, val_rows)
