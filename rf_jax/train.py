"""The trainer: reads top to bottom as workdir, mesh, input, model, objective, state, loop.

Everything a phase does differently is in its config: the objective (rf_jax/objectives),
the tasks and text (rf_jax/data), the model (rf_jax/model.py). This module only wires them
and runs the loop.
"""
from __future__ import annotations

import dataclasses
import json
import time

import jax
import ml_collections
from etils import epath

from rf_jax import handoff, objectives, plugins
from rf_jax.checkpoint import Checkpointer, absolute, to_json
from rf_jax.data.inputs import Inputs, build_inputs
from rf_jax.errors import ConfigError, Diverged
from rf_jax.greedy import TrainingEvaluator
from rf_jax.loop import StepLog, StopSignal, is_due
from rf_jax.metrics import MetricWriter, format_duration, peak_flops_per_device
from rf_jax.model import param_count
from rf_jax.probes.bits_per_byte import TextEvaluator
from rf_jax.sharding import check_batch, make_global_batch, make_mesh
from rf_jax.train_state import (abstract_model, abstract_state, all_finite, budget_decay,
                                init_params, init_state, make_optimizer, make_schedule, mesh_rules,
                                model_config, set_budget_scale, state_from_params, state_shardings)
from rf_jax.vocab import Vocab


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
  except ImportError as e:  # etils reads gs:// through gcsfs, an optional dependency
    raise ConfigError(f"workdir {workdir}: {e} (pip install 'rf_jax[gcs]')") from None
  return path


@dataclasses.dataclass
class Model:
  """The model and optimizer of a run, in abstract (sharded, unallocated) form."""
  config: object          # ModelConfig
  rules: tuple
  schedule: object
  tx: object
  graphdef: object
  abs_params: dict
  abs_state: dict
  shardings: dict


def build_model(config, vocab: Vocab, mesh, keeps_reference: bool) -> Model:
  t = config.train
  mcfg, rules = model_config(config, vocab), mesh_rules(config)
  over = t.get("decay_over", "steps")
  schedule = make_schedule(t.learning_rate, t.warmup_steps, t.steps, t.end_lr_fraction, over)
  tx = make_optimizer(schedule, t.weight_decay, t.b1, t.b2, t.grad_clip,
                      int(t.get("skip_nonfinite", 0)), over)
  graphdef, abs_params = abstract_model(mcfg, mesh, rules)
  abs_state, shardings = abstract_state(abs_params, tx, mesh), state_shardings(abs_params, tx, mesh)
  if keeps_reference:  # a frozen copy of the starting parameters, checkpointed with the state
    abs_state["ref_params"], shardings["ref_params"] = abs_params, shardings["params"]
  return Model(mcfg, rules, schedule, tx, graphdef, abs_params, abs_state, shardings)


def restore_or_init(config, model: Model, mesh, vocab: Vocab, inputs: Inputs, ckpt, writer):
  """(start step, state, data iterator, lineage, training FLOPs counted so far, the
  objective's saved host state): resume this workdir, else start from the `init_from`
  checkpoint (parameters only), else from scratch."""
  data_iter = inputs.iterator(config, jax.process_index(), jax.process_count())

  def on_meta(meta):
    if Vocab.from_json(meta["vocab"]) != vocab:
      raise ConfigError(f"the checkpoints in {ckpt.directory} were trained with another vocabulary "
                        "(data.tokenizer / data.extra_symbols); use their config or a new --workdir")
    inputs.curriculum.load_state(meta.get("curriculum", {}))

  restored = ckpt.restore_latest(model.abs_state, data_iter, on_meta=on_meta)
  if restored:
    start, state, meta = restored
    writer.console(f"resumed from step {start} ({ckpt.directory}/{start})")
    if not ckpt.has_data_for_this_process(start):
      writer.console(f"checkpoint written by another process count: data resumes at batch {start}")
      data_iter = inputs.iterator(config, jax.process_index(), jax.process_count(), start)
    return (start, state, data_iter, meta.get("lineage", []), float(meta.get("train_flops", 0.0)),
            meta.get("objective", {}))
  if config.init_from:
    fresh = init_params(model.config, mesh, model.rules, config.seed)
    params, lineage = handoff.init_params(config.init_from, model.abs_params, fresh, vocab, mesh)
    src = lineage[-1]
    writer.console(f"initialised from {src['workdir']} step {src['step']} (phase {src['phase']}); "
                   f"vocabulary {vocab.size} tokens, optimizer fresh")
    state = with_reference(state_from_params(params, model.tx, mesh), model, mesh)
    return 0, state, data_iter, lineage, 0.0, {}
  state = init_state(model.config, model.tx, mesh, model.rules, config.seed)
  return 0, with_reference(state, model, mesh), data_iter, [], 0.0, {}


def with_reference(state: dict, model: Model, mesh) -> dict:
  if "ref_params" in model.abs_state:
    with jax.set_mesh(mesh):
      state["ref_params"] = jax.jit(lambda p: jax.tree.map(lambda x: x.copy(), p),
                                    out_shardings=model.shardings["params"])(state["params"])
  return state


def build_evaluators(config, inputs: Inputs, vocab: Vocab, model: Model, mesh) -> list:
  """The periodic evaluations: greedy exact match per task and level; text bits/byte."""
  t, out = config.train, []
  if t.eval_levels:
    out.append(TrainingEvaluator(inputs.eval_names, tuple(t.eval_levels), t.eval_examples,
                                 config.seed, vocab, config.data.use_trace, model.graphdef, mesh,
                                 scratchpad=config.rl.scratchpad))
  if inputs.val_rows is not None:
    out.append(TextEvaluator(inputs.val_rows, model.graphdef, mesh, vocab.byte_lengths,
                             t.batch_size, vocab.allowed()))
  return out


def evaluate(evaluators, params, step: int, log: StepLog, levels) -> None:
  scalars = {}
  for evaluator in evaluators:
    scalars.update(evaluator(params))
  if "val/loss" in scalars:
    log.writer.console(f"eval step {step} validation: loss {scalars['val/loss']:.4f} | bits/byte "
                       f"{scalars['val/bits_per_byte']:.3f} | perplexity {scalars['val/perplexity']:.2f}")
  per_task = {}
  for k, v in scalars.items():
    if k.startswith("eval/") and k.endswith("/exact"):
      per_task.setdefault(k.split("/")[1], []).append(f"{v:.2f}")
  if per_task:
    log.writer.console(f"eval step {step} exact-match by level {tuple(levels)}: " +
                       ", ".join(f"{n} {'/'.join(v)}" for n, v in per_task.items()))
  log.record(step, scalars)
  log.speed.start(step)  # evaluation time is not training throughput


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains per `config` in `workdir`, resuming if it holds checkpoints. Returns final metrics."""
  t_start, t = time.time(), config.train
  if t.steps <= 0:  # before anything is created: a new workdir must not be left empty
    raise ConfigError(f"train.steps={t.steps} must be a positive number of steps")
  # --- workdir, mesh, input --------------------------------------------------------------
  workdir_path = ensure_writable(workdir)
  writer = MetricWriter(str(workdir_path))
  mesh = make_mesh(config.mesh.shape)
  check_batch(t.batch_size, mesh)
  vocab = handoff.build_vocab(config, str(workdir_path))
  inputs = build_inputs(config, vocab)
  # --- model, objective, state -----------------------------------------------------------
  plugins.import_modules(config.objective.modules, "objective.modules")
  objective_cls = objectives.get(config)
  if inputs.curriculum.focus is not None and not objective_cls.draws_prompts:
    raise ConfigError(f"curriculum.focus shares out the prompts of reward steps, and objective "
                      f"{config.objective.kind!r} draws none: set curriculum.focus=0 or "
                      "objective.kind=rl")
  model = build_model(config, vocab, mesh, objective_cls.keeps_reference(config))
  ckpt = Checkpointer(str(workdir_path), t.keep_checkpoints, t.async_checkpoint)
  start, state, data_iter, lineage, flops, saved = restore_or_init(config, model, mesh, vocab,
                                                                   inputs, ckpt, writer)
  peak, peak_src = peak_flops_per_device(t.peak_flops)
  log = StepLog(writer, inputs.curriculum, inputs.task_names, t.log_every, t.steps, start,
                peak * jax.device_count(), flops, int(t.get("skip_nonfinite", 0)))
  objective = objective_cls(objectives.Context(
      config, mesh, model.config, model.graphdef, model.tx, model.schedule, model.shardings,
      vocab, inputs.mixture, inputs.curriculum,
      next_batch=lambda: make_global_batch(next(data_iter), mesh), log=writer.console,
      note=log.note))
  objective.load_state(saved)
  evaluators = build_evaluators(config, inputs, vocab, model, mesh)
  writer.console(
      f"rf_jax phase {config.phase}: {param_count(model.abs_params) / 1e6:.2f}M params, mesh "
      f"{dict(mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform} device(s), "
      f"{jax.process_count()} process(es); tasks {','.join(inputs.task_names)} levels "
      f"{tuple(config.data.levels)}; objective {config.objective.kind}; "
      f"peak {peak / 1e9:.0f} GFLOP/s/device ({peak_src})")
  if inputs.val_rows is not None:
    writer.console(f"text: {inputs.source!r}; validation {len(inputs.val_rows['inputs'])} rows")
  meta = lambda step: to_json({
      "config": config.to_dict(), "vocab": vocab.to_json(), "phase": config.phase, "step": step,
      "metrics": log.last, "curriculum": inputs.curriculum.state(), "lineage": lineage,
      "objective": objective.state(), "train_flops": log.flops_total})
  if lineage and start == 0 and t.checkpoint_every and 0 not in ckpt.all_steps():
    ckpt.save(0, state, data_iter, meta(0))  # the handoff point, inspectable and resumable
  # --- loop ------------------------------------------------------------------------------
  if start >= t.steps:
    writer.console(f"workdir already at step {start} >= train.steps={t.steps}; nothing to "
                   "train (raise --config.train.steps or use a new --workdir)")
  with jax.set_mesh(mesh):
    step, stopped = stop_if_diverged(
        lambda: train_loop(t, objective, state, start, log, evaluators, ckpt, data_iter, meta),
        ckpt, writer)
  ckpt.close()
  return finish(log, evaluators, workdir_path, step, start, stopped, time.time() - t_start,
                ckpt.directory)


def train_loop(t, objective, state, start: int, log: StepLog, evaluators, ckpt, data_iter,
               meta) -> tuple[int, str]:
  """Steps from `start` to `t.steps` (or an early stop), evaluating and saving on schedule;
  returns (the last step, why it stopped early or "")."""
  stop = StopSignal(t.preemption_sync_every, t.time_budget_s, t.get("flop_budget", 0.0),
                    spent=log.flops_total)
  log.speed.budgets(stop.deadline, t.get("flop_budget", 0.0))
  step, stopped = start, ""
  by_budget = t.get("decay_over", "steps") == "budget"
  while step < t.steps and not (stopped := stop.check(step)):
    if by_budget:
      scale = budget_decay(stop.progress(step, t.steps), t.end_lr_fraction)
      state = set_budget_scale(state, scale)
    state, metrics, flops = objective.step(state, step)
    if by_budget:
      metrics["lr_scale"] = scale
    stop.spent(flops)
    step += 1
    log.add(step, metrics, flops)  # reads step N-1's metrics now that step N is dispatched
    if evaluators and is_due(t.eval_every, step, t.steps):
      log.flush()
      evaluate(evaluators, state["params"], step, log, t.eval_levels)
    if is_due(t.checkpoint_every, step, t.steps):
      log.flush()  # the curriculum must have seen every step it saves
      save_finite(ckpt, step, state, data_iter, meta)
  log.close_interval(step)
  stop.restore()
  if stopped == "signal":
    log.writer.console(f"SIGTERM: saving step {step} and exiting")
  else:
    if stopped == "budget":
      log.writer.console(f"time budget train.time_budget_s={t.time_budget_s:g} reached at step {step}")
    if stopped == "flops":
      log.writer.console(f"FLOP budget train.flop_budget={t.flop_budget:.3g} reached at step {step}")
    if evaluators and step > start and not is_due(t.eval_every, step, t.steps):
      evaluate(evaluators, state["params"], step, log, t.eval_levels)
  if step > start and step not in ckpt.all_steps():
    save_finite(ckpt, step, state, data_iter, meta)
  return step, stopped


def save_finite(ckpt, step: int, state, data_iter, meta) -> None:
  """Saves `step` unless its parameters are not finite: a checkpoint never holds NaN."""
  if not bool(all_finite(state["params"])):
    raise Diverged(f"the parameters are not finite at step {step}")
  ckpt.save(step, state, data_iter, meta(step))


def stop_if_diverged(loop, ckpt, writer):
  """Runs `loop()`; a diverged run waits for its earlier (finite) saves, then stops with one
  line that names the step and the newest checkpoint."""
  try:
    return loop()
  except Diverged as e:
    ckpt.close()
    writer.close()
    last = ckpt.latest_step()
    kept = f"the newest checkpoint is step {last}" if last is not None else "no checkpoint was saved"
    raise Diverged(f"{e}: the run diverged and stops without saving it; {kept}. Lower "
                   "train.learning_rate and rerun to resume from it (or skip such steps with "
                   "train.skip_nonfinite=N in a new --workdir)") from None


def finish(log: StepLog, evaluators, workdir_path, step: int, start: int, stopped: str,
           wall_s: float, ckpt_dir) -> dict:
  """Writes final_metrics.json (and the last evaluation's samples) and closes the writer."""
  last = {**log.last, "wall_time_s": wall_s}
  if jax.process_index() == 0 and step > start:
    (workdir_path / "final_metrics.json").write_text(json.dumps({"step": step, **last}, indent=1))
    greedy = [e for e in evaluators if isinstance(e, TrainingEvaluator)]
    if greedy and stopped != "signal":
      (workdir_path / "final_samples.json").write_text(json.dumps(greedy[0].samples(), indent=0))
  log.writer.console(f"done at step {step} in {format_duration(wall_s)}; checkpoints in {ckpt_dir}")
  log.writer.close()
  return last
