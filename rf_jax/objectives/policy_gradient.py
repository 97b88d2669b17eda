"""`rl`: reward from the task scorers, on the trainer's mesh: prompts -> jitted group
rollouts -> Python scoring -> jitted policy-gradient update (the pure parts are rf_jax/rl.py).

Prompts for step s are a pure function of (seed, s, curriculum), so a resumed run draws the
same prompts; sampling keys are folded from (seed, s), so it draws the same completions.
"""
from __future__ import annotations

import dataclasses
import functools
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from rf_jax import tasks as tasks_lib
from rf_jax.curriculum import Curriculum
from rf_jax.data.packing import encode_prompt, encode_target
from rf_jax.data.tasks import MAX_EXAMPLES_PER_ROW, TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.model import ModelConfig, flops_per_token
from rf_jax.objectives.base import Context, Objective, register
from rf_jax.greedy import answer_text
from rf_jax.rl import ADVANTAGES, CREDITS, group_advantages, rl_step, token_advantages
from rf_jax.sampling import left_pad, sample
from rf_jax.sharding import batch_sharding, data_parallel_size, make_global_batch
from rf_jax.step import loss_fn
from rf_jax.vocab import Vocab

RL_SEED_OFFSET = 7_000_003  # RL prompts come from other example indices than packed rows


@dataclasses.dataclass(frozen=True)
class Prompt:
  task: int
  level: int
  example: tasks_lib.Example


def draw_prompts(mixture: TaskMixture, curriculum: Curriculum, seed: int, step: int,
                 n: int) -> list[Prompt]:
  rng = np.random.default_rng([seed, step, 13])
  p = mixture.probabilities(step)
  out = []
  for k in range(n):
    t = int(rng.choice(len(mixture.names), p=p))
    task = tasks_lib.get(mixture.names[t])
    level = curriculum.draw(rng, task.name, step)
    ex = tasks_lib.make_example(task, seed + RL_SEED_OFFSET, step * MAX_EXAMPLES_PER_ROW + k, level)
    out.append(Prompt(t, level, ex))
  return out


def check_rl_config(rl, mixture: TaskMixture, level_range, vocab: Vocab, mesh, seed: int,
                    use_trace: bool) -> None:
  """Fails up front if a prompt or an answer cannot fit, or the batch cannot shard."""
  if rl.advantage not in ADVANTAGES:
    raise ConfigError(f"rl.advantage must be one of {ADVANTAGES}, got {rl.advantage!r}")
  if rl.credit not in CREDITS:
    raise ConfigError(f"rl.credit must be one of {CREDITS}, got {rl.credit!r}")
  rows = rl.prompts * rl.group_size
  if rl.group_size < 2:
    raise ConfigError("rl.group_size must be >= 2: advantages compare samples of one prompt")
  if rows % (data_parallel_size(mesh) * jax.process_count()):
    raise ConfigError(f"rl.prompts x rl.group_size = {rows} rows must divide over the "
                      f"data-parallel size {data_parallel_size(mesh)} and the processes")
  for name in mixture.names:
    task = tasks_lib.get(name)
    for i in range(32):
      ex = tasks_lib.make_example(task, seed, i, int(level_range[1]))
      if len(encode_prompt(vocab, ex.prompt)) > rl.prompt_len:
        raise ConfigError(f"a prompt of task {name!r} at level {level_range[1]} has more than "
                          f"rl.prompt_len={rl.prompt_len} tokens; raise rl.prompt_len")
      if len(encode_target(vocab, ex, use_trace)) > rl.max_new:
        raise ConfigError(f"an answer of task {name!r} at level {level_range[1]} needs more than "
                          f"rl.max_new={rl.max_new} tokens; raise rl.max_new")


class RLTrainer:
  """`trainer(state, step, nt_batch=None) -> (state, metrics)`: one RL (or mixed) step."""

  def __init__(self, rl, mixture: TaskMixture, curriculum: Curriculum, vocab: Vocab, graphdef,
               mesh, tx, shardings, seed: int, use_trace: bool, n_levels: int,
               nt_weight: float = 0.0):
    self.rl, self.mixture, self.curriculum, self.vocab = rl, mixture, curriculum, vocab
    self.mesh, self.seed, self.use_trace, self.n_levels = mesh, seed, use_trace, n_levels
    self._sh = batch_sharding(mesh)
    allowed = vocab.allowed()
    self._sample = jax.jit(
        functools.partial(sample, graphdef=graphdef, max_new=rl.max_new, valid_vocab=allowed,
                          eos_id=vocab.eos_id, temperature=rl.temperature, top_k=rl.top_k),
        in_shardings=(shardings["params"], self._sh, self._sh, None), out_shardings=self._sh)
    step = functools.partial(
        rl_step, graphdef=graphdef, tx=tx, allowed=allowed, eos_id=vocab.eos_id,
        clip_eps=rl.clip_eps, kl_coef=rl.kl_coef, entropy_coef=rl.get("entropy_coef", 0.0),
        updates=rl.updates_per_batch,
        nt_weight=nt_weight, nt_loss=functools.partial(loss_fn, allowed=allowed))
    self._update = jax.jit(step, donate_argnums=0, out_shardings=(shardings, None))
    self._tasks = [tasks_lib.get(n) for n in mixture.names]

  def _local(self, rows: np.ndarray) -> np.ndarray:
    n = len(rows) // jax.process_count()
    return rows[jax.process_index() * n:(jax.process_index() + 1) * n]

  def rollout(self, params, step: int):
    """(prompts, prompt tokens, mask, completions [P*G, N] on host, seconds)."""
    rl = self.rl
    prompts = draw_prompts(self.mixture, self.curriculum, self.seed, step, rl.prompts)
    ids = [encode_prompt(self.vocab, p.example.prompt) for p in prompts]
    tokens, mask = left_pad([x for x in ids for _ in range(rl.group_size)], rl.prompt_len,
                            self.vocab.pad_id)
    t0 = time.perf_counter()
    with jax.set_mesh(self.mesh):
      g = make_global_batch({"t": self._local(tokens), "m": self._local(mask)}, self.mesh)
      key = jax.random.fold_in(jax.random.key(self.seed), step)
      out = self._sample(params, g["t"], g["m"], key)
      out = np.asarray(multihost_utils.process_allgather(out, tiled=True))
    return prompts, tokens, mask, out, time.perf_counter() - t0

  def score(self, prompts: list[Prompt], completions: np.ndarray):
    """(rewards [P, G], exact [P, G], per-token rewards of each completion or None) from each
    task's partial-credit scorer (and its `token_rewards` with `rl.credit = token`)."""
    G = self.rl.group_size
    rewards = np.zeros((len(prompts), G), np.float32)
    exact = np.zeros((len(prompts), G), np.float32)
    per_token = [] if self.rl.credit == "token" else None
    for i, p in enumerate(prompts):
      task = self._tasks[p.task]
      for j in range(G):
        ids = completions[i * G + j]
        text = answer_text(self.vocab, ids, self.use_trace)
        rewards[i, j] = task.score(p.example, text)
        exact[i, j] = text == p.example.answer
        if per_token is not None:
          per_token.append(token_credit(self.vocab, ids, task.token_rewards(p.example, text),
                                        self.use_trace))
    return rewards, exact, per_token

  def advantages(self, rewards, per_token, n: int) -> np.ndarray:
    if per_token is None:
      return group_advantages(rewards, self.rl.advantage).reshape(-1)
    return token_advantages(per_token, self.rl.group_size, n, self.rl.token_discount)

  def __call__(self, state, step: int, nt_batch=None):
    prompts, tokens, mask, completions, t_roll = self.rollout(state["params"], step)
    t1 = time.perf_counter()
    rewards, exact, per_token = self.score(prompts, completions)
    adv = self.advantages(rewards, per_token, completions.shape[1])
    t2 = time.perf_counter()
    with jax.set_mesh(self.mesh):
      g = make_global_batch({"t": self._local(tokens), "m": self._local(mask),
                             "c": self._local(completions), "a": self._local(adv)}, self.mesh)
      state, aux = self._update(state, g["t"], g["m"], g["c"], g["a"], nt_batch)
      aux = jax.device_get(aux)
    t3 = time.perf_counter()
    n_tasks = len(self._tasks)
    ex_tl = np.zeros((n_tasks, self.n_levels), np.int32)
    cnt_tl = np.zeros((n_tasks, self.n_levels), np.int32)
    for i, p in enumerate(prompts):
      ex_tl[p.task, p.level - 1] += int(exact[i].sum())
      cnt_tl[p.task, p.level - 1] += exact.shape[1]
    rollout_tokens = float(completions.shape[0] * self.rl.max_new)
    metrics = {
        **{k: float(v) for k, v in aux.items()},
        "reward": float(rewards.mean()),
        "pass@1": float(exact.mean()),
        f"pass@{self.rl.group_size}": float(exact.max(axis=1).mean()),
        "zero_variance_groups": float((rewards.std(axis=1) < 1e-8).mean()),
        "rollout_s": t_roll, "score_s": t2 - t1, "update_s": t3 - t2,
        "rollout_tokens_per_s": rollout_tokens / max(t_roll, 1e-9),
        "exact": ex_tl, "count": cnt_tl,
    }
    for t, name in enumerate(self.mixture.names):
      sel = [i for i, p in enumerate(prompts) if p.task == t]
      if sel:
        metrics[f"reward/{name}"] = float(rewards[sel].mean())
    return state, metrics


def token_credit(vocab: Vocab, ids, char_rewards: list[float], use_trace: bool) -> np.ndarray:
  """The reward of each action token (up to and including the first <eos>) from a task's
  per-character rewards of the scored answer (`Task.token_rewards`: one per character, then
  one for where it stopped). A token earns the mean of the characters it wrote; the token
  that ends the completion (<eos>, else the last one) also earns the stop reward; tokens
  before the answer (a trace, up to <ans>) earn the answer's mean."""
  ids = [int(i) for i in ids]
  n = ids.index(vocab.eos_id) + 1 if vocab.eos_id in ids else len(ids)
  chars, stop = np.asarray(char_rewards[:-1], np.float64), float(char_rewards[-1])
  start = 0
  if use_trace and vocab.ans_id in ids[:n]:
    start = n - 1 - ids[:n][::-1].index(vocab.ans_id) + 1
  out = np.full(n, chars.mean() if len(chars) else stop)
  offsets = [len(vocab.decode(ids[start:j])) for j in range(start, n + 1)]
  for j in range(start, n):
    lo, hi = offsets[j - start], offsets[j - start + 1]
    out[j] = chars[lo:hi].mean() if hi > lo else 0.0
  out[n - 1] += stop
  return out


def rollout_cost(rl, model: ModelConfig) -> tuple[int, float]:
  """(tokens, FLOPs) of one RL step: a forward pass per sampled token (prompt + completion)
  and `updates_per_batch` forward + backward passes over the same rows."""
  n = rl.prompt_len + rl.max_new
  tokens = rl.prompts * rl.group_size * n
  return tokens, tokens * flops_per_token(model, n) * (1 / 3 + rl.updates_per_batch)


def make_rl_trainer(ctx: Context, nt_weight: float = 0.0) -> RLTrainer:
  c = ctx.config
  check_rl_config(c.rl, ctx.mixture, c.data.levels, ctx.vocab, ctx.mesh, c.seed, c.data.use_trace)
  return RLTrainer(c.rl, ctx.mixture, ctx.curriculum, ctx.vocab, ctx.graphdef, ctx.mesh, ctx.tx,
                   ctx.shardings, c.seed, c.data.use_trace, ctx.n_levels, nt_weight=nt_weight)


@register("rl")
class PolicyGradient(Objective):
  """Reward only: group-normalised advantages, token-level policy gradient (config.rl)."""

  def __init__(self, ctx: Context):
    super().__init__(ctx)
    self._trainer = make_rl_trainer(ctx)
    self.tokens, self.flops = rollout_cost(ctx.config.rl, ctx.model)

  def step(self, state, step):
    state, metrics = self._trainer(state, step)
    return state, {**metrics, "tokens": self.tokens}, self.flops

  @staticmethod
  def planned_cost(config, model):
    return 0.0, rollout_cost(config.rl, model)[1]

  @staticmethod
  def keeps_reference(config) -> bool:
    return config.rl.kl_coef > 0  # the KL penalty's reference policy
