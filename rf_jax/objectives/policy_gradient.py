"""`rl`: reward from the task scorers, on the trainer's mesh: prompts -> jitted group
rollouts -> Python scoring -> jitted policy-gradient update (the pure parts are rf_jax/rl.py,
the host side of prompts and credit rf_jax/rl_rollouts.py, the update's rows rf_jax/rl_rows.py).

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
from rf_jax.data.tasks import TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.model import ModelConfig, flops_per_token
from rf_jax.objectives.base import Context, Objective, register
from rf_jax.greedy import answer_text
from rf_jax.replay import Replay
from rf_jax.rl import ADVANTAGES, CREDITS, PASS_RATES, group_advantages, rl_step, token_advantages
from rf_jax.rl_rollouts import (SOLVED_LEVELS, Group, Prompt, alphabet_table, answer_budget,
                                draw_prompts, scratchpad_tokens, token_credit)
from rf_jax.rl_rows import (completion_length, make_samples, packed_rows, padded_rows,
                            reference_sample, shared_rows)
from rf_jax.sampling import left_pad, sample
from rf_jax.sharding import batch_sharding, data_parallel_size, make_global_batch
from rf_jax.step import loss_fn
from rf_jax.vocab import Vocab


def check_rl_config(rl, mixture: TaskMixture, level_range, vocab: Vocab, mesh, seed: int,
                    use_trace: bool) -> None:
  """Fails up front if a prompt or an answer cannot fit, or the batch cannot shard."""
  for key, known in (("advantage", ADVANTAGES), ("credit", CREDITS), ("pass_rate", PASS_RATES),
                     ("solved_level", SOLVED_LEVELS)):
    if rl[key] not in known:
      raise ConfigError(f"rl.{key} must be one of {known}, got {rl[key]!r}")
  if rl.replay < 0:
    raise ConfigError(f"rl.replay={rl.replay} must be >= 0 (exact answers kept per family and "
                      "level; 0 = off)")
  if rl.replay and rl.replay_samples < 1:
    raise ConfigError(f"rl.replay_samples ({rl.replay_samples}) must be >= 1: answers replayed "
                      "per update (or set rl.replay=0)")
  if rl.replay and not 0 <= rl.replay_floor <= 1:
    raise ConfigError(f"rl.replay_floor ({rl.replay_floor}) must be in [0, 1]: the least replay "
                      "weight of a family and level, whatever its pass rate")
  if rl.replay and not 0 < rl.replay_priority <= 1:
    raise ConfigError(f"rl.replay_priority ({rl.replay_priority}) must be in (0, 1]: the draw "
                      "weight of a kept answer the greedy policy already writes, against 1 "
                      "(1: uniform)")
  if rl.replay and rl.replay_coef <= 0:
    raise ConfigError(f"rl.replay_coef ({rl.replay_coef}) must be > 0: the advantage of a "
                      "replayed token (or set rl.replay=0)")
  if not 0 <= rl.action_floor < 1:
    raise ConfigError(f"rl.action_floor is a share of the probability in [0, 1), got "
                      f"{rl.action_floor}")
  if rl.pass_rate == "greedy" and rl.scratchpad:
    raise ConfigError("rl.pass_rate=greedy reads the answer teacher-forced right after the "
                      "prompt, which a scratchpad run does not write: set rl.pass_rate=samples")
  if rl.answer_alphabet and use_trace:
    raise ConfigError("rl.answer_alphabet limits answers to their family's characters, but a "
                      "trace uses others: set data.use_trace=False or rl.answer_alphabet=False")
  if rl.answer_alphabet and vocab.text == "sentencepiece":
    raise ConfigError("rl.answer_alphabet needs a character or byte tokenizer, not "
                      "sentencepiece: set rl.answer_alphabet=False")
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
      if rl.prompt_len and len(encode_prompt(vocab, ex.prompt)) > rl.prompt_len:
        raise ConfigError(f"a prompt of task {name!r} at level {level_range[1]} has more than "
                          f"rl.prompt_len={rl.prompt_len} tokens; raise rl.prompt_len or set 0")
      if rl.max_new and len(encode_target(vocab, ex, use_trace)) + rl.scratchpad > rl.max_new:
        raise ConfigError(f"an answer of task {name!r} at level {level_range[1]} needs more than "
                          f"rl.max_new={rl.max_new} tokens (scratchpad included); raise "
                          "rl.max_new or set 0 (each family's own length)")


def pack_len(rl, mixture: TaskMixture, level_range, vocab: Vocab, seed: int,
             use_trace: bool) -> int:
  """Tokens per packed update row: rl.pack_len, else 128 or the longest sample (a prompt of
  the top level and its whole allowance) if that is longer."""
  longest = 0
  for name in mixture.names:
    task = tasks_lib.get(name)
    hi = int(level_range[1])
    prompt = max(len(encode_prompt(vocab, tasks_lib.make_example(task, seed, i, hi).prompt))
                 for i in range(64))
    answer = rl.max_new or answer_budget(task, hi, vocab, use_trace, seed) + (
        rl.scratchpad + 1 if rl.scratchpad else 0)
    longest = max(longest, (rl.prompt_len or prompt) + answer)
  if rl.pack_len and rl.pack_len < longest:
    raise ConfigError(f"rl.pack_len={rl.pack_len} is shorter than the longest sample "
                      f"({longest} tokens); raise it or set 0")
  return rl.pack_len or max(128, _round_up(longest, 16))


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


class RLTrainer:
  """`trainer(state, step, nt_batch=None) -> (state, metrics)`: one RL (or mixed) step."""

  def __init__(self, rl, mixture: TaskMixture, curriculum: Curriculum, vocab: Vocab, graphdef,
               model: ModelConfig, mesh, tx, shardings, seed: int, use_trace: bool,
               n_levels: int, nt_weight: float = 0.0, row_len: int = 128):
    self.rl, self.mixture, self.curriculum, self.vocab = rl, mixture, curriculum, vocab
    self.mesh, self.seed, self.use_trace, self.n_levels = mesh, seed, use_trace, n_levels
    self.row_len, self.model, self.graphdef = row_len, model, graphdef
    self.sampled = 0  # tokens the sampler ran this step (prompts and completions)
    self._sh = batch_sharding(mesh)
    self._rows_mult = data_parallel_size(mesh) * jax.process_count()
    self._tasks = [tasks_lib.get(n) for n in mixture.names]
    self._budget = {(t, lv): answer_budget(task, lv, vocab, use_trace, seed)
                    for t, task in enumerate(self._tasks) for lv in range(1, task.max_level + 1)}
    allowed = self._allowed = vocab.allowed(ans=use_trace or rl.scratchpad > 0)
    # Reference answers, teacher-forced in the update: each first-round prompt's (rl.pass_rate
    # = greedy) and each replayed answer (Replay.mark), in that order.
    self._greedy_refs = rl.prompts if rl.pass_rate == "greedy" else 0
    self._references = self._greedy_refs + (rl.replay_samples if rl.replay else 0)
    self._group = rl.group_size if rl.share_prompts else 1  # rows prefilled as one
    self.replay = Replay(rl.replay)
    self._legal = (alphabet_table(self._tasks, vocab, model.vocab_size)
                   if rl.answer_alphabet else None)
    extra = () if self._legal is None else (self._sh,)
    self._sampler = functools.lru_cache(maxsize=None)(lambda max_new: jax.jit(
        functools.partial(sample, graphdef=graphdef, max_new=max_new, valid_vocab=allowed,
                          eos_id=vocab.eos_id, temperature=rl.temperature, top_k=rl.top_k,
                          think=rl.scratchpad, ans_id=vocab.ans_id,
                          group=self._group),
        in_shardings=(shardings["params"], self._sh, self._sh, None, self._sh) + extra,
        out_shardings=self._sh))
    step = functools.partial(
        rl_step, graphdef=graphdef, tx=tx, allowed=allowed, eos_id=vocab.eos_id,
        clip_eps=rl.clip_eps, kl_coef=rl.kl_coef, entropy_coef=rl.entropy_coef,
        entropy_target=rl.entropy_target, updates=rl.updates_per_batch,
        ans_id=vocab.ans_id if rl.scratchpad > 0 else -1, legal=self._legal,
        alphabet_coef=rl.alphabet_coef, floors=rl.entropy_share > 0,
        action_floor=rl.action_floor,
        references=self._references, nt_weight=nt_weight,
        nt_loss=functools.partial(loss_fn, allowed=allowed))
    self._update = jax.jit(step, donate_argnums=0, out_shardings=(shardings, None))

  def entropy_floor(self, p: Prompt) -> float:
    """The entropy floor of `p`'s answer actions. rl.entropy_target, or with
    rl.entropy_share > 0 at least that share of the largest entropy of the family's answer
    actions (log of its alphabet with <eos>, or of the vocabulary) times 1 - its level's pass
    rate: a family that is not yet solved keeps exploring its whole alphabet, a solved one
    may commit."""
    rl = self.rl
    share = rl.entropy_share
    if share <= 0:
      return rl.entropy_target
    size = self._legal[p.task + 1].sum() if self._legal is not None else self._allowed.sum()
    passed = self.curriculum.pass_rate[self._tasks[p.task].name][p.level - 1]
    return max(rl.entropy_target, share * float(np.log(size)) * (1 - passed))

  def _local(self, rows: np.ndarray) -> np.ndarray:
    n = len(rows) // jax.process_count()
    return rows[jax.process_index() * n:(jax.process_index() + 1) * n]

  def limit(self, p: Prompt) -> int:
    """Tokens a sample of `p` may write: rl.max_new, else its family's and level's answer
    budget, plus the scratchpad and its <ans>."""
    rl = self.rl
    if rl.max_new:
      return rl.max_new
    return self._budget[(p.task, p.level)] + (rl.scratchpad + 1 if rl.scratchpad else 0)

  def rollout(self, params, step: int, round_: int = 0):
    """(prompts, prompt ids, completions [P*G, N] on host, per-sample limits, seconds)."""
    rl = self.rl
    prompts = draw_prompts(self.mixture, self.curriculum, self.seed, step, rl.prompts, round_,
                           rl.learnability, rl.solved_weight, rl.solved_level)
    ids = [encode_prompt(self.vocab, p.example.prompt) for p in prompts]
    rows = [x for x in ids for _ in range(rl.group_size)]
    tokens, mask = left_pad(rows, rl.prompt_len or _round_up(max(map(len, rows)), 16),
                            self.vocab.pad_id)
    limits = np.repeat([self.limit(p) for p in prompts], rl.group_size).astype(np.int32)
    host = {"t": tokens, "m": mask, "l": limits}
    if self._legal is not None:
      host["a"] = np.repeat(self._legal[[p.task + 1 for p in prompts]], rl.group_size, axis=0)
    t0 = time.perf_counter()
    with jax.set_mesh(self.mesh):
      g = make_global_batch({k: self._local(v) for k, v in host.items()}, self.mesh)
      key = jax.random.fold_in(jax.random.key(self.seed), step)
      key = jax.random.fold_in(key, round_) if round_ else key
      sampler = self._sampler(rl.max_new or _round_up(int(limits.max()), 4))
      out = sampler(params, g["t"], g["m"], key, g["l"], *([g["a"]] if "a" in g else []))
      out = np.asarray(multihost_utils.process_allgather(out, tiled=True))
    prefilled = tokens.size // self._group
    self.sampled += prefilled + len(out) * max(completion_length(r, self.vocab.eos_id)
                                               for r in out)  # what the while loop ran
    return prompts, ids, out, limits, time.perf_counter() - t0

  def score(self, prompt: Prompt, completions: np.ndarray, limit: int):
    """(rewards [G], exact [G], per-token rewards of each completion or None) from the task's
    partial-credit scorer (and its `token_rewards` with `rl.credit = token`); a scratchpad
    token costs rl.scratchpad_cost."""
    rl, task = self.rl, self._tasks[prompt.task]
    rewards, exact, per_token = [], [], []
    for ids in completions[:, :limit]:
      text = answer_text(self.vocab, ids, self.use_trace, rl.scratchpad)
      thought = scratchpad_tokens(self.vocab, ids, rl.scratchpad)
      rewards.append(task.score(prompt.example, text) - rl.scratchpad_cost * thought)
      exact.append(text == prompt.example.answer)
      if rl.credit == "token":
        r = token_credit(self.vocab, ids, task.token_rewards(prompt.example, text),
                         self.use_trace, rl.scratchpad)
        r[:thought] -= rl.scratchpad_cost
        per_token.append(r)
    return np.asarray(rewards, np.float32), np.asarray(exact, np.float32), per_token or None

  def groups(self, params, step: int, round_: int) -> tuple[list[Group], float, float]:
    """One rollout round, scored: (groups, rollout seconds, scoring seconds)."""
    G = self.rl.group_size
    prompts, ids, out, limits, t_roll = self.rollout(params, step, round_)
    t0 = time.perf_counter()
    scored = [self.score(p, out[i * G:(i + 1) * G], int(limits[i * G]))
              for i, p in enumerate(prompts)]
    # Samples compared with each other: a prompt's group, or with rl.advantage = batch every
    # sample of the round from the same family and level.
    pools: dict = {}
    for i, p in enumerate(prompts):
      pools.setdefault((p.task, p.level) if self.rl.advantage == "batch" else i, []).append(i)
    adv = np.zeros(out.shape, np.float32)
    for members in pools.values():
      rows = np.concatenate([np.arange(i * G, (i + 1) * G) for i in members])
      adv[rows] = self.pool_advantages([scored[i] for i in members], out.shape[1])
    found = [Group(p, ids[i], out[i * G:(i + 1) * G], int(limits[i * G]), scored[i][0],
                   scored[i][1], adv[i * G:(i + 1) * G]) for i, p in enumerate(prompts)]
    return found, t_roll, time.perf_counter() - t0

  def pool_advantages(self, scored: list, n: int) -> np.ndarray:
    """[samples, n] advantages of every completion token of a pool of scored groups."""
    rl = self.rl
    if rl.credit == "token":
      per_token = [r for _, _, tok in scored for r in tok]
      return token_advantages(per_token, len(per_token), n, rl.token_discount, rl.advantage)
    rewards = np.concatenate([r for r, _, _ in scored])[None]
    return np.repeat(group_advantages(rewards, rl.advantage).reshape(-1, 1), n, axis=1)

  def collect(self, params, step: int) -> tuple[list[Group], list[Group], dict]:
    """(rl.prompts groups for the update, the first round's groups, metrics). With
    rl.redraw = R, groups whose samples all earned the same (no advantage, no gradient) are
    dropped and new prompts drawn, up to R more rounds; what is still missing is filled
    with dropped groups."""
    rl = self.rl
    kept, dropped, t_roll, t_score, drawn = [], [], 0.0, 0.0, []
    for r in range(1 + rl.redraw):
      found, a, b = self.groups(params, step, r)
      t_roll, t_score = t_roll + a, t_score + b
      drawn.append(found) if r == 0 else None
      self.remember(found)
      for g in found:
        (kept if g.informative or not rl.redraw else dropped).append(g)
      if len(kept) >= rl.prompts:
        break
    batch = (kept + dropped)[:rl.prompts]
    zero = lambda gs: float(np.mean([not g.contrast for g in gs]))
    return batch, drawn[0], {"rollout_s": t_roll, "score_s": t_score, "rollout_rounds": r + 1,
                   "zero_variance_drawn": zero(drawn[0]), "zero_variance_groups": zero(batch)}

  def remember(self, groups: list[Group]) -> None:
    """Keeps each prompt's first exact completion for replay (rl.replay)."""
    if not self.rl.replay:
      return
    for g in groups:
      hits = np.flatnonzero(g.exact)
      if len(hits):
        ids = g.completions[hits[0], :g.limit]
        self.replay.add(g.prompt.task, g.prompt.level, g.prompt_ids,
                        ids[:completion_length(ids, self.vocab.eos_id)])

  def replayed(self, step: int) -> list:
    """rl.replay_samples kept answers for `step`'s update, a family and level drawn in
    proportion to 1 - its pass rate (what it has still to learn), at least rl.replay_floor
    (so what is learned is rehearsed), each with advantage rl.replay_coef on every token."""
    if not self.rl.replay:
      return []
    rng = np.random.default_rng([self.seed, step, 29])
    names = [t.name for t in self._tasks]
    return self.replay.draw(rng, self.rl.replay_samples,
                            lambda t, lv: max(1.0 - self.curriculum.pass_rate[names[t]][lv - 1],
                                              self.rl.replay_floor),
                            self.rl.replay_priority)

  def rows(self, batch: list[Group], drawn: list[Group],
           replayed: list = ()) -> dict[str, np.ndarray]:
    """The update's rows: the batch's samples, the `replayed` answers and, with
    rl.pass_rate = greedy, the reference answer of each first-round prompt (not trained on:
    see `reference_sample`)."""
    samples = []
    for g in batch:
      samples += make_samples([g.prompt_ids] * len(g.completions), g.completions[:, :g.limit],
                              g.advantages[:, :g.limit], self.vocab.eos_id, self.vocab.ans_id,
                              self.rl.scratchpad,
                              0 if self._legal is None else g.prompt.task + 1,
                              self.entropy_floor(g.prompt), self.rl.entropy_target)
    for j, (entry, _) in enumerate(replayed):  # imitated, not explored: no entropy floor
      sample, = make_samples([list(entry.prompt_ids)], entry.completion[None],
                             np.full((1, len(entry.completion)), self.rl.replay_coef, np.float32),
                             self.vocab.eos_id, self.vocab.ans_id, self.rl.scratchpad,
                             0 if self._legal is None else entry.task + 1)
      samples.append(dataclasses.replace(sample, reference=self._greedy_refs + j + 1))
    if self._greedy_refs:
      samples += [reference_sample(g.prompt_ids, encode_target(self.vocab, g.prompt.example,
                                                               self.use_trace), i)
                  for i, g in enumerate(drawn)]
    if not self.rl.pack:
      lim = max(g.limit for g in batch)
      plen = self.rl.prompt_len or _round_up(max(len(g.prompt_ids) for g in batch), 16)
      return padded_rows(samples, plen, self.rl.max_new or _round_up(lim, 4), self.vocab.pad_id)
    pack = shared_rows if self.rl.share_prompts else packed_rows
    return pack(samples, self.row_len, self.vocab.pad_id, self._rows_mult)

  def __call__(self, state, step: int, nt_batch=None):
    """One step; its metrics include `flops` (sampling and update, counted by `step_flops`),
    `update_flops` and `tokens` (prompt and completion tokens sampled)."""
    self.sampled = 0
    replayed = self.replayed(step)  # what earlier steps found
    batch, drawn, metrics = self.collect(state["params"], step)
    rows = self.rows(batch, drawn, replayed)
    if self.rl.replay:
      metrics.update(replay_kept=float(len(self.replay)), replay_samples=float(len(replayed)))
    t2 = time.perf_counter()
    with jax.set_mesh(self.mesh):
      g = make_global_batch({k: self._local(v) for k, v in rows.items()}, self.mesh)
      state, aux = self._update(state, g, nt_batch)
      aux = jax.device_get(aux)
    metrics["update_s"] = time.perf_counter() - t2
    context = rows["inputs"].shape[1]
    metrics["update_flops"] = step_flops(self.rl, self.model, 0, rows["inputs"].size, context)
    metrics["flops"] = metrics["update_flops"] + step_flops(self.rl, self.model, self.sampled, 0,
                                                            context)
    metrics["tokens"] = float(self.sampled)
    written = aux.pop("reference_wrong")[1:] == 0 if self._references else None
    greedy = written[:self._greedy_refs] if self._greedy_refs else None
    if replayed:
      marks = written[self._greedy_refs:][:len(replayed)]
      for (entry, _), solved in zip(replayed, marks):
        self.replay.mark(entry, solved)
      metrics["replay_greedy_exact"] = float(np.mean(marks))
    metrics.update({k: float(v) for k, v in aux.items()})
    metrics.update(self.summary(drawn, rows, greedy, sum(len(e.completion) for e, _ in replayed)))
    return state, metrics

  def summary(self, drawn: list[Group], rows: dict, greedy: np.ndarray | None = None,
              replayed_tokens: int = 0) -> dict:
    """What the step's first round of groups says (as the policy samples, before any were
    dropped): reward, pass rates, solve shares, and the curriculum's counts per family and
    level: exact matches (of the samples, or with `greedy`, one bool per group, of the
    greedy policy) and the samples' summed reward. `replayed_tokens` of the rows' actions
    were replayed, not sampled."""
    exact = np.stack([g.exact for g in drawn])
    rewards = np.stack([g.rewards for g in drawn])
    ex_tl = np.zeros((len(self._tasks), self.n_levels), np.int32)
    cnt_tl, samples_tl = np.zeros_like(ex_tl), np.zeros_like(ex_tl)
    reward_tl = np.zeros(ex_tl.shape)
    for i, g in enumerate(drawn):
      hits = g.exact if greedy is None else greedy[i:i + 1]
      at = (g.prompt.task, g.prompt.level - 1)
      ex_tl[at] += int(hits.sum())
      cnt_tl[at] += len(hits)
      reward_tl[at] += float(g.rewards.sum())
      samples_tl[at] += len(g.rewards)
    m = {"reward": float(rewards.mean()), "pass@1": float(exact.mean()),
         f"pass@{self.rl.group_size}": float(exact.max(axis=1).mean()),
         "response_tokens": float((rows["action_mask"].sum() - replayed_tokens) / exact.size),
         "update_tokens": float(rows["inputs"].size), "exact": ex_tl, "count": cnt_tl,
         "reward_sum": reward_tl, "samples": samples_tl}
    if greedy is not None:
      m["greedy_exact"] = float(np.mean(greedy))
    for t, name in enumerate(self.mixture.names):
      sel = [i for i, g in enumerate(drawn) if g.prompt.task == t]
      if sel:
        m[f"reward/{name}"] = float(rewards[sel].mean())
        m[f"solve_all/{name}"] = float(exact[sel].min(axis=1).mean())
        m[f"solve_none/{name}"] = float((exact[sel].max(axis=1) == 0).mean())
    return m


PLANNED_PROMPT, PLANNED_ANSWER = 32, 12  # lengths a plan assumes when the run picks its own


def step_flops(rl, model: ModelConfig, sampled: float, updated: float, context: int) -> float:
  """FLOPs of one reward step: a forward pass per sampled token (prompts and completions,
  every redraw round) and, per token of the update's rows, `updates_per_batch` forward +
  backward passes plus a forward for the PPO behaviour policy and one for the KL reference
  where they are used. The trainer counts each step with it; plans use `rollout_cost`."""
  per = flops_per_token(model, context)
  passes = rl.updates_per_batch + (rl.updates_per_batch > 1) / 3 + (rl.kl_coef > 0) / 3
  return sampled * per / 3 + updated * per * passes


def rollout_cost(rl, model: ModelConfig) -> tuple[int, float]:
  """(tokens, FLOPs) planned for one RL step of rl.prompts x rl.group_size samples of the
  configured lengths (or PLANNED_* where the run picks them), one round, padded rows."""
  n = (rl.prompt_len or PLANNED_PROMPT) + (rl.max_new or PLANNED_ANSWER) + rl.scratchpad
  tokens = rl.prompts * rl.group_size * n
  return tokens, step_flops(rl, model, tokens, tokens, n)


def make_rl_trainer(ctx: Context, nt_weight: float = 0.0) -> RLTrainer:
  c = ctx.config
  check_rl_config(c.rl, ctx.mixture, c.data.levels, ctx.vocab, ctx.mesh, c.seed, c.data.use_trace)
  return RLTrainer(c.rl, ctx.mixture, ctx.curriculum, ctx.vocab, ctx.graphdef, ctx.model,
                   ctx.mesh, ctx.tx, ctx.shardings, c.seed, c.data.use_trace, ctx.n_levels,
                   nt_weight=nt_weight, row_len=pack_len(c.rl, ctx.mixture, c.data.levels,
                                                         ctx.vocab, c.seed, c.data.use_trace))


@register("rl")
class PolicyGradient(Objective):
  """Reward only: group-normalised advantages, token-level policy gradient (config.rl)."""
  draws_prompts = True

  def __init__(self, ctx: Context):
    super().__init__(ctx)
    self._trainer = make_rl_trainer(ctx)

  def step(self, state, step):
    state, metrics = self._trainer(state, step)
    return state, metrics, metrics.pop("flops")

  def state(self):
    return {"replay": self._trainer.replay.state()} if self.ctx.config.rl.replay else {}

  def load_state(self, state):
    self._trainer.replay.load_state(state.get("replay", {}))

  @staticmethod
  def planned_cost(config, model):
    return 0.0, rollout_cost(config.rl, model)[1]

  @staticmethod
  def keeps_reference(config) -> bool:
    return config.rl.kl_coef > 0  # the KL penalty's reference policy
