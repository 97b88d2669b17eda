"""The trainer: reads top to bottom as workdir, mesh, input, model, state, step, loop."""
from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import os
import signal
import sys
import time

import jax
import ml_collections
import numpy as np
from etils import epath

from rf_jax import tasks as tasks_lib
from rf_jax.checkpoint import Checkpointer, absolute, to_json
from rf_jax import handoff, plugins
from rf_jax.curriculum import Curriculum
from rf_jax.data.pipeline import make_iterator
from rf_jax.data.tasks import PackedTaskSource, TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.evaluate import TrainingEvaluator
from rf_jax.metrics import MetricWriter, Throughput, format_duration, peak_flops_per_device, to_host
from rf_jax.model import flops_per_token, param_count
from rf_jax.sharding import batch_sharding, check_batch, make_global_batch, make_mesh
from rf_jax.step import train_step
from rf_jax.train_state import (abstract_model, abstract_state, init_params, init_state, make_optimizer,
                                make_schedule, mesh_rules, model_config, state_from_params,
                                state_shardings)
from rf_jax.vocab import Vocab, text_vocab, train_sentencepiece


def ensure_writable(workdir: str) -> epath.Path:
  """The workdir as an absolute path (Orbax needs one), checked writable up front."""
  path = epath.Path(absolute(workdir))
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".write_probe_{jax.process_index()}"
    probe.write_text("ok")
    probe.unlink()
  except OSError as e:
    raise ConfigError(f"workdir {workdir} is not writable ({e.strerror or e}); "
                      "pass --workdir=PATH to a folder you can write") from None
  return path


def import_task_modules(spec) -> None:
  """Imports user task modules (dotted names or .py paths) so their @register runs."""
  plugins.import_modules(spec, "data.task_modules")


def split_names(s: str) -> list[str]:
  return [x.strip() for x in s.split(",") if x.strip()]


def build_vocab(config, workdir_path: epath.Path) -> Vocab:
  """This phase's vocabulary: phase-1 layout plus the text tokens of data.tokenizer.

  A sentencepiece model is trained once per lineage: reused from this workdir's newest
  checkpoint when resuming, else from the `init_from` checkpoint, else trained on the
  phase's text corpus.
  """
  from rf_jax.vocab import SYMBOLS
  d = config.data
  kind = d.get("tokenizer", "chars")
  symbols = SYMBOLS + tuple(c for c in d.get("extra_symbols", "") if c not in SYMBOLS)
  sp_model = b""
  if kind == "sentencepiece":
    from rf_jax.runs import read_meta
    for where in (str(workdir_path), config.get("init_from", "")):
      try:
        old = Vocab.from_json(read_meta(handoff.split_checkpoint_path(where)[0])[1]["vocab"])
      except ConfigError:
        continue
      if old.text == "sentencepiece":
        sp_model = old.sp_model
        break
    if not sp_model:
      from rf_jax.data import text as text_lib
      docs = text_lib.load_documents(d.text_files, d.get("text_field", "text"))
      sp_model = train_sentencepiece(docs, d.get("sp_vocab_size", 1024))
  try:
    return text_vocab(kind, symbols, sp_model)
  except ValueError as e:
    raise ConfigError(str(e)) from None


def make_curriculum(config, task_names) -> Curriculum:
  c = config.get("curriculum", None) or {}
  get = lambda k, d: c.get(k, d) if c else d
  return Curriculum(
      tuple(task_names), int(config.data.levels[0]), int(config.data.levels[1]),
      kind=get("kind", "fixed"), total_steps=config.train.steps,
      mix_lower=get("mix_lower", 0.25), raise_at=get("raise_at", 0.9),
      lower_at=get("lower_at", 0.1), min_examples=get("min_examples", 200),
      # longer than the prefetch buffer: see rf_jax/curriculum.py
      lag=max(get("lag", 0), config.data.prefetch + 4))


def make_mixture(config, task_names) -> TaskMixture:
  d = config.data
  weights = [float(w) for w in split_names(d.weights)] or None
  end_weights = [float(w) for w in split_names(d.get("weights_end", ""))] or None
  return TaskMixture.build(task_names, weights, d.levels, end_weights, config.train.steps)


def objective_schedule(config):
  """step -> 'next_token' | 'rl' | 'mixed', from config.objective."""
  o = config.get("objective", None) or {}
  kind = o.get("kind", "next_token") if o else "next_token"
  kinds = ("next_token", "rl", "mixed", "schedule")
  if kind not in kinds:
    raise ConfigError(f"objective.kind must be one of {kinds}, got {kind!r}")
  if kind == "schedule":
    switch = int(o.get("switch_step", 0))
    return lambda step: "next_token" if step < switch else "rl"
  return lambda step: kind


def make_source(config, vocab: Vocab, curriculum: Curriculum, mixture: TaskMixture):
  """(grain source of packed rows, fixed validation rows or None) for data.source."""
  d = config.data
  tasks = PackedTaskSource(mixture, curriculum, vocab, d.seq_len, config.seed, d.use_trace,
                           config.train.batch_size)
  kind = d.get("source", "tasks")
  if kind == "tasks":
    return tasks, None
  if kind != "text":
    raise ConfigError(f"data.source must be 'tasks' or 'text', got {kind!r}")
  from rf_jax.data import text as text_lib
  docs = text_lib.load_documents(d.text_files, d.get("text_field", "text"))
  train_docs, val_docs = text_lib.split_documents(docs, d.validation_fraction, config.seed)
  text = text_lib.TextSource(train_docs, vocab, d.seq_len, config.seed)
  val = text_lib.TextSource(val_docs, vocab, d.seq_len, config.seed).rows(d.validation_rows)
  return text_lib.ReplaySource(text, tasks, d.get("replay_fraction", 0.0), config.seed), val


class _StopSignal:
  """Why the loop should stop early: SIGTERM (preemption: save and exit) or the wall-clock
  budget `train.time_budget_s` (finish normally: evaluate, save, report).

  With several processes, they agree every `sync_every` steps (any one signalled stops
  all), so every process saves the same step.
  """
  REASONS = ("", "budget", "signal")

  def __init__(self, sync_every: int, budget_s: float = 0.0):
    self._flag = False
    self._sync_every = max(1, sync_every)
    self._deadline = time.time() + budget_s if budget_s > 0 else None
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    self._flag = True

  def check(self, step: int) -> str:
    local = 2 if self._flag else int(self._deadline is not None and time.time() > self._deadline)
    if jax.process_count() > 1:
      if step % self._sync_every:
        return ""
      from jax.experimental import multihost_utils
      local = int(multihost_utils.process_allgather(np.int32(local)).max())
    return self.REASONS[local]

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains per `config` in `workdir`, resuming if it holds checkpoints. Returns final metrics."""
  t_start = time.time()
  t = config.train
  # --- workdir -------------------------------------------------------------------------
  workdir_path = ensure_writable(workdir)
  writer = MetricWriter(str(workdir_path))

  # --- mesh ----------------------------------------------------------------------------
  mesh = make_mesh(config.mesh.shape)
  check_batch(config.train.batch_size, mesh)
  rules = mesh_rules(config)

  # --- input ---------------------------------------------------------------------------
  import_task_modules(config.data.task_modules)
  vocab = build_vocab(config, workdir_path)
  task_names = split_names(config.data.tasks)
  eval_names = split_names(t.get("eval_tasks", "")) or task_names
  for level in t.eval_levels:
    for name in eval_names:
      tasks_lib.check_level(tasks_lib.get(name), level)
  curriculum = make_curriculum(config, task_names)
  mixture = make_mixture(config, task_names)
  source, val_rows = make_source(config, vocab, curriculum, mixture)
  source[0]  # fail here, not in a prefetch thread, if an example cannot fit
  data_iter = make_iterator(source, config.train.batch_size, jax.process_index(),
                            jax.process_count(), config.data.num_threads, config.data.prefetch)

  # --- model and optimizer -------------------------------------------------------------
  mcfg = model_config(config, vocab)
  schedule = make_schedule(t.learning_rate, t.warmup_steps, t.steps, t.end_lr_fraction)
  tx = make_optimizer(schedule, t.weight_decay, t.b1, t.b2, t.grad_clip)
  graphdef, abs_params = abstract_model(mcfg, mesh, rules)
  abs_state = abstract_state(abs_params, tx, mesh)
  shardings = state_shardings(abs_params, tx, mesh)
  objective_at = objective_schedule(config)
  rl_cfg = config.get("rl", None)
  uses_rl = any(objective_at(s) != "next_token" for s in (0, t.steps - 1))
  keep_ref = uses_rl and rl_cfg.kl_coef > 0  # the frozen reference of the KL penalty
  if keep_ref:
    abs_state["ref_params"], shardings["ref_params"] = abs_params, shardings["params"]

  # --- state: resume, else initialise ----------------------------------------------------
  ckpt = Checkpointer(str(workdir_path), t.keep_checkpoints, t.async_checkpoint)

  def on_meta(m):
    if Vocab.from_json(m["vocab"]) != vocab:
      raise ConfigError(f"the checkpoints in {workdir} were trained with another vocabulary "
                        "(data.tokenizer / data.extra_symbols); use their config or a new --workdir")
    curriculum.load_state(m.get("curriculum", {}))

  restored = ckpt.restore_latest(abs_state, data_iter, on_meta=on_meta)
  lineage, handed_off = [], False
  if restored:
    start, state, _ = restored
    writer.console(f"resumed from step {start} ({ckpt.directory}/{start})")
    if not ckpt.has_data_for_this_process(start):
      writer.console(f"checkpoint written by another process count: data resumes at batch {start}")
      data_iter = make_iterator(source, config.train.batch_size, jax.process_index(),
                                jax.process_count(), config.data.num_threads,
                                config.data.prefetch, start_step=start)
    lineage = restored[2].get("lineage", [])
  elif config.get("init_from", ""):
    params, lineage = handoff.init_params(config.init_from, abs_params,
                                          init_params(mcfg, mesh, rules, config.seed), vocab, mesh)
    start, state, handed_off = 0, state_from_params(params, tx, mesh), True
    src = lineage[-1]
    writer.console(f"initialised from {src['workdir']} step {src['step']} (phase {src['phase']}); "
                   f"vocabulary {vocab.size} tokens, optimizer fresh")
  else:
    start, state = 0, init_state(mcfg, tx, mesh, rules, config.seed)
  if keep_ref and "ref_params" not in state:
    with jax.set_mesh(mesh):
      state["ref_params"] = jax.jit(lambda p: jax.tree.map(lambda x: x.copy(), p),
                                    out_shardings=shardings["params"])(state["params"])

  n_params = param_count(abs_params)
  fpt = flops_per_token(mcfg, config.data.seq_len)
  peak, peak_src = peak_flops_per_device(t.get("peak_flops", 0.0))
  writer.console(
      f"rf_jax phase {config.phase}: {n_params / 1e6:.2f}M params, mesh "
      f"{dict(mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform} device(s), "
      f"{jax.process_count()} process(es); tasks {','.join(task_names)} levels "
      f"{tuple(config.data.levels)}; peak {peak / 1e9:.0f} GFLOP/s/device ({peak_src})")
  if val_rows is not None:
    writer.console(f"text: {source!r}; validation {len(val_rows['inputs'])} rows")

  # --- step ----------------------------------------------------------------------------
  bsh = batch_sharding(mesh)
  n_levels = max(tasks_lib.get(n).max_level for n in task_names)
  step_fn = jax.jit(functools.partial(train_step, graphdef=graphdef, tx=tx, schedule=schedule,
                                      n_tasks=len(task_names), n_levels=n_levels,
                                      allowed=vocab.allowed()),
                    in_shardings=(shardings, bsh), out_shardings=(shardings, None),
                    donate_argnums=0)
  rl_trainer = None
  if uses_rl:
    from rf_jax.rollouts import RLTrainer, check_rl_config
    check_rl_config(rl_cfg, mixture, config.data.levels, vocab, mesh, config.seed,
                    config.data.use_trace)
    rl_trainer = RLTrainer(rl_cfg, mixture, curriculum, vocab, graphdef, mesh, tx, shardings,
                           config.seed, config.data.use_trace, n_levels,
                           nt_weight=1 - config.objective.get("rl_weight", 0.5))
    rl_tokens = rl_cfg.prompts * rl_cfg.group_size * (rl_cfg.prompt_len + rl_cfg.max_new)

  nt_tokens = t.batch_size * config.data.seq_len
  compiled, once = None, {}

  def compile_step(state, batch):
    """Compiles the next-token step ahead of time, to log its compile time and memory once."""
    t0 = time.perf_counter()
    fn = step_fn.lower(state, batch).compile()
    info = {"perf/compile_s": time.perf_counter() - t0}
    mem = fn.memory_analysis()
    if mem is not None:  # per device, as XLA plans it
      for key, attr in (("arguments", "argument_size_in_bytes"), ("outputs", "output_size_in_bytes"),
                        ("temporaries", "temp_size_in_bytes")):
        info[f"perf/{key}_mib"] = getattr(mem, attr, 0) / 2**20
    writer.console(f"compiled the train step in {info['perf/compile_s']:.1f}s; per device: " +
                   ", ".join(f"{k[5:-4]} {v:,.1f} MiB" for k, v in info.items() if k.endswith("_mib")))
    once.update(info)  # goes out with the next logged step
    return fn

  def take_step(state, step):
    """((state, metrics), tokens processed) for this step's objective."""
    nonlocal compiled
    kind = objective_at(step)
    if kind == "next_token":
      batch = make_global_batch(next(data_iter), mesh)
      compiled = compiled or compile_step(state, batch)
      return compiled(state, batch), nt_tokens
    nt = make_global_batch(next(data_iter), mesh) if kind == "mixed" else None
    return rl_trainer(state, step, nt), rl_tokens + (nt_tokens if nt is not None else 0)

  evaluate = text_eval = None
  if t.eval_levels:
    evaluate = TrainingEvaluator(eval_names, tuple(t.eval_levels), t.eval_examples, config.seed,
                                 vocab, config.data.use_trace, graphdef, mesh)
  if val_rows is not None:
    from rf_jax.data.text import TextEvaluator
    text_eval = TextEvaluator(val_rows, graphdef, mesh, vocab.byte_lengths, t.batch_size,
                              vocab.allowed())

  has_eval = evaluate is not None or text_eval is not None

  def meta(step, metrics):
    return to_json({"config": config.to_dict(), "vocab": vocab.to_json(), "phase": config.phase,
                    "step": step, "metrics": metrics, "curriculum": curriculum.state(),
                    "lineage": lineage})

  if handed_off and t.checkpoint_every:
    ckpt.save(0, state, data_iter, meta(0, {}))  # the handoff point, inspectable and resumable

  # --- loop ----------------------------------------------------------------------------
  stop = _StopSignal(t.get("preemption_sync_every", 10), t.get("time_budget_s", 0.0))
  stopped = ""
  speed = Throughput(fpt, peak * jax.device_count(), t.steps)
  last, pending, interval = {}, None, []

  task_exact = np.zeros((len(task_names), 2))

  def finish_step(step, metrics, tokens_per_step):
    nonlocal last
    metrics = dict(metrics)
    exact, count = np.asarray(metrics.pop("exact")), np.asarray(metrics.pop("count"))
    changes = curriculum.update(step, exact, count)
    if changes:
      writer.console(f"curriculum at step {step}: " + ", ".join(
          f"{k} -> level {v} from step {step + curriculum.lag}" for k, v in changes.items()))
    task_exact[:, 0] += exact.sum(axis=1)
    task_exact[:, 1] += count.sum(axis=1)
    m = to_host(metrics)
    interval.append(m)
    if step == start + 1:
      speed.start(step)  # the first step includes compilation: not timed
    else:
      speed.add_tokens(tokens_per_step)
    if step % t.log_every == 0 or step == t.steps:
      keys = sorted({k for x in interval for k in x})  # objectives may switch mid-interval
      avg = {f"train/{k}": float(np.mean([x[k] for x in interval if k in x])) for k in keys}
      avg.update(speed.report(step))
      avg.update(once)
      once.clear()
      for i, name in enumerate(task_names):
        if task_exact[i, 1]:
          avg[f"train/exact/{name}"] = task_exact[i, 0] / task_exact[i, 1]
        avg[f"curriculum/{name}"] = curriculum.current(name, step)
      task_exact[:] = 0
      interval.clear()
      writer.write(step, avg)
      last = {**last, **avg}
      line = f"step {step}/{t.steps}"
      for key, label, fmt in (("train/loss", "loss", ".4f"), ("train/token_accuracy", "tok-acc", ".3f"),
                              ("train/reward", "reward", ".3f"), ("train/pass@1", "pass@1", ".3f"),
                              ("train/zero_variance_groups", "zero-var", ".2f")):
        if key in avg:
          line += f" | {label} {avg[key]:{fmt}}"
      if "perf/tokens_per_s" in avg:
        line += (f" | {avg['perf/tokens_per_s']:,.0f} tok/s | MFU {100 * avg['perf/mfu']:.1f}%"
                 f" | ETA {format_duration(avg['perf/eta_s'])}")
      writer.console(line)

  def run_eval(step):
    nonlocal last
    m = {}
    if text_eval is not None:
      m.update(text_eval(state["params"]))
      writer.console(f"eval step {step} validation: loss {m['val/loss']:.4f} | bits/byte "
                     f"{m['val/bits_per_byte']:.3f} | perplexity {m['val/perplexity']:.2f}")
    if evaluate is not None:
      m.update(evaluate(state["params"]))
      per_task = {}
      for k, v in m.items():
        if k.startswith("eval/") and k.endswith("/exact"):
          per_task.setdefault(k.split("/")[1], []).append(f"{v:.2f}")
      writer.console(f"eval step {step} exact-match by level {tuple(t.eval_levels)}: " +
                     ", ".join(f"{n} {'/'.join(v)}" for n, v in per_task.items()))
    writer.write(step, m)
    last = {**last, **m}
    speed.start(step)  # evaluation time is not training throughput

  step = start
  with jax.set_mesh(mesh):
    if start >= t.steps:
      writer.console(f"workdir already at step {start} >= train.steps={t.steps}; nothing to "
                     "train (raise --config.train.steps or use a new --workdir)")
    while step < t.steps and not (stopped := stop.check(step)):
      (state, metrics), n_tokens = take_step(state, step)
      if pending is not None:
        finish_step(*pending)  # step N-1's metrics, fetched after step N is dispatched
      step += 1
      pending = (step, metrics, n_tokens)
      if has_eval and t.eval_every and step % t.eval_every == 0 and step < t.steps:
        finish_step(*pending)
        pending = None
        run_eval(step)
      if t.checkpoint_every and step % t.checkpoint_every == 0 and step < t.steps:
        if pending is not None:
          finish_step(*pending)  # the curriculum must have seen every step it saves
          pending = None
        ckpt.save(step, state, data_iter, meta(step, last))
    if pending is not None:
      finish_step(*pending)
    if stopped == "signal":
      writer.console(f"SIGTERM: saving step {step} and exiting")
    else:
      if stopped == "budget":
        writer.console(f"time budget train.time_budget_s={t.time_budget_s:g} reached at step {step}")
      evaluated = t.eval_every and step % t.eval_every == 0 and step < t.steps  # in the loop
      if has_eval and step > start and not evaluated:
        run_eval(step)
    if step > start and step not in ckpt.all_steps():
      ckpt.save(step, state, data_iter, meta(step, last))
  ckpt.close()
  stop.restore()
  last["wall_time_s"] = time.time() - t_start
  if jax.process_index() == 0 and step > start:
    (workdir_path / "final_metrics.json").write_text(json.dumps({"step": step, **last}, indent=1))
    if evaluate is not None and stopped != "signal":
      (workdir_path / "final_samples.json").write_text(json.dumps(evaluate.samples(), indent=0))
  writer.console(f"done at step {step} in {format_duration(last['wall_time_s'])}; "
                 f"checkpoints in {ckpt.directory}")
  writer.close()
  return last
