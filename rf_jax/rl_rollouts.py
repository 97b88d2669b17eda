"""Reward rollouts on the host: which prompts a step draws, how long their answers may be, what
each family may write, and how a scored answer's credit reaches its tokens. Pure functions of
their arguments (numpy and the task registry); the trainer that runs them on the mesh is
rf_jax/objectives/policy_gradient.py, the update's rows rf_jax/rl_rows.py.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from rf_jax import tasks as tasks_lib
from rf_jax.curriculum import Curriculum
from rf_jax.data.packing import encode_target
from rf_jax.data.tasks import MAX_EXAMPLES_PER_ROW, TaskMixture
from rf_jax.vocab import Vocab

RL_SEED_OFFSET = 7_000_003  # RL prompts come from other example indices than packed rows
SOLVED_LEVELS = ("current", "first")  # the level whose pass rate rl.solved_weight reads


@dataclasses.dataclass(frozen=True)
class Prompt:
  task: int
  level: int
  example: tasks_lib.Example


@dataclasses.dataclass
class Group:
  """One prompt's samples after scoring: what the update and the logs need."""
  prompt: Prompt
  prompt_ids: list[int]
  completions: np.ndarray   # [G, N]
  limit: int                # tokens a sample could write
  rewards: np.ndarray       # [G]
  exact: np.ndarray         # [G]
  advantages: np.ndarray    # [G, N]: each completion token's advantage

  @property
  def informative(self) -> bool:
    """Whether the update learns anything from it (some advantage is not 0)."""
    return bool(np.abs(self.advantages).max() > 1e-8)

  @property
  def contrast(self) -> bool:
    """Whether its samples earned different rewards (else it is a zero-variance group)."""
    return bool(self.rewards.std() > 1e-8)


def draw_prompts(mixture: TaskMixture, curriculum: Curriculum, seed: int, step: int,
                 n: int, round_: int = 0, learnable: bool = False,
                 solved_weight: float = 1.0, solved_level: str = "current") -> list[Prompt]:
  """The prompts of one rollout round of `step`: tasks by the mixture's weights (times their
  levels' learnability with `learnable`; times solved_weight + (1 - solved_weight) x (1 -
  the pass rate of their current level, or with solved_level = first of their first) with
  solved_weight < 1, so prompts go where the policy still fails; the curriculum's focused
  families then take their share), levels by the curriculum."""
  rng = np.random.default_rng([seed, step, 13] + ([round_] if round_ else []))
  p = mixture.probabilities(step)
  if learnable:
    p = p * [curriculum.learnability(t, step).mean() for t in mixture.names]
  if solved_weight < 1:
    level = lambda t: 0 if solved_level == "first" else curriculum.current(t, step) - 1
    failing = np.array([1 - curriculum.pass_rate[t][level(t)] for t in mixture.names])
    p = p * (solved_weight + (1 - solved_weight) * failing)
  p = p / p.sum()
  if curriculum.focus is not None:
    p = curriculum.focus.probabilities(p)
  out = []
  for k in range(n):
    t = int(rng.choice(len(mixture.names), p=p))
    task = tasks_lib.get(mixture.names[t])
    level = (curriculum.draw_learnable if learnable else curriculum.draw)(rng, task.name, step)
    index = step * MAX_EXAMPLES_PER_ROW + k + round_ * n * 7919
    ex = tasks_lib.make_example(task, seed + RL_SEED_OFFSET, index, level)
    out.append(Prompt(t, level, ex))
  return out


def answer_budget(task, level: int, vocab: Vocab, use_trace: bool, seed: int) -> int:
  """Tokens the longest answer of a family's level takes (<eos> included), over 64 examples."""
  return max(len(encode_target(vocab, tasks_lib.make_example(task, seed, i, level), use_trace))
             for i in range(64))


def alphabet_table(tasks: list, vocab: Vocab, width: int) -> np.ndarray:
  """[len(tasks) + 1, width] bool: row 0 allows every id, row t + 1 the ids of task t's
  answer alphabet (`Task.answer_alphabet`) and <eos>."""
  table = np.zeros((len(tasks) + 1, width), bool)
  table[0] = True
  for t, task in enumerate(tasks):
    ids = [i for c in task.answer_alphabet() for i in vocab.encode(c)]
    table[t + 1, ids + [vocab.eos_id]] = True
  return table


def scratchpad_tokens(vocab: Vocab, ids, scratchpad: int) -> int:
  """How many tokens a completion wrote before its first <ans> (0 without a scratchpad)."""
  if not scratchpad:
    return 0
  ids = [int(i) for i in ids]
  return ids.index(vocab.ans_id) if vocab.ans_id in ids else len(ids)


def token_credit(vocab: Vocab, ids, char_rewards: list[float], use_trace: bool,
                 scratchpad: int = 0) -> np.ndarray:
  """The reward of each action token (up to and including the first <eos>) from a task's
  per-character rewards of the scored answer (`Task.token_rewards`: one per character, then
  one for where it stopped). A token earns the mean of the characters it wrote; the token
  that ends the completion (<eos>, else the last one) also earns the stop reward; tokens
  before the answer (a trace up to its last <ans>, a scratchpad up to its first) earn the
  answer's mean."""
  ids = [int(i) for i in ids]
  n = ids.index(vocab.eos_id) + 1 if vocab.eos_id in ids else len(ids)
  chars, stop = np.asarray(char_rewards[:-1], np.float64), float(char_rewards[-1])
  start = 0
  if scratchpad and vocab.ans_id in ids[:n]:
    start = ids.index(vocab.ans_id) + 1
  elif use_trace and vocab.ans_id in ids[:n]:
    start = n - 1 - ids[:n][::-1].index(vocab.ans_id) + 1
  out = np.full(n, chars.mean() if len(chars) else stop)
  offsets = [len(vocab.decode(ids[start:j])) for j in range(start, n + 1)]
  for j in range(start, n):
    lo, hi = offsets[j - start], offsets[j - start + 1]
    out[j] = chars[lo:hi].mean() if hi > lo else 0.0
  out[n - 1] += stop
  return out
