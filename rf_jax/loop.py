"""The training loop's bookkeeping: when to stop early, and what each step reports.

`StepLog` reads step N-1's metrics after step N is dispatched (so the host never waits on
the device inside the loop), feeds the curriculum, averages metrics over the logging
interval, and writes the console line, TensorBoard and metrics.jsonl.
"""
from __future__ import annotations

import math
import signal
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from rf_jax.curriculum import Curriculum
from rf_jax.errors import Diverged
from rf_jax.metrics import MetricWriter, Throughput, format_duration, to_host

# Metrics that must stay finite: one that is not means the step diverged.
FINITE = ("loss", "grad_norm")

# (metric, console label, format) of the step line, in order, when present.
CONSOLE = (("train/loss", "loss", ".4f"), ("train/token_accuracy", "tok-acc", ".3f"),
           ("train/reward", "reward", ".3f"), ("train/pass@1", "pass@1", ".3f"),
           ("train/zero_variance_drawn", "zero-var drawn", ".2f"),
           ("train/zero_variance_groups", "zero-var", ".2f"), ("train/entropy", "entropy", ".2f"))


def is_due(every: int, step: int, total: int) -> bool:
  """A periodic action at `step`, except at the last step (the end of the run does it)."""
  return bool(every) and step % every == 0 and step < total


class StopSignal:
  """Why the loop should stop early: SIGTERM (preemption: save and exit), the wall-clock
  budget `train.time_budget_s` or the budget of counted training FLOPs `train.flop_budget`
  (both finish normally: evaluate, save, report). The time counts from this process's
  start, the FLOPs over the whole run (`spent` is what earlier processes of it counted).

  With several processes, they agree every `sync_every` steps (any one signalled stops
  all), so every process saves the same step.
  """
  REASONS = ("", "budget", "signal", "flops")

  def __init__(self, sync_every: int, budget_s: float = 0.0, flop_budget: float = 0.0,
               spent: float = 0.0):
    self._flag = False
    self._flops, self._flop_budget = spent, flop_budget
    self._sync_every = max(1, sync_every)
    self.deadline = time.time() + budget_s if budget_s > 0 else None
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    self._flag = True

  def spent(self, flops: float) -> None:
    self._flops += flops

  def progress(self, step: int, total_steps: int) -> float:
    """The share of the run done: of its steps or of its FLOP budget, whichever is further
    (the same on every process: no wall clock)."""
    done = step / max(total_steps, 1)
    return max(done, self._flops / self._flop_budget) if self._flop_budget > 0 else done

  def check(self, step: int) -> str:
    local = 2 if self._flag else int(self.deadline is not None and time.time() > self.deadline)
    if not local and self._flop_budget > 0 and self._flops >= self._flop_budget:
      local = 3
    if jax.process_count() > 1:
      if step % self._sync_every:
        return ""
      local = int(multihost_utils.process_allgather(np.int32(local)).max())
    return self.REASONS[local]

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


class StepLog:
  """Per-step metrics -> curriculum updates, interval averages, console and writer."""

  def __init__(self, writer: MetricWriter, curriculum: Curriculum, task_names, log_every: int,
               total_steps: int, start: int, peak_flops_total: float, flops_total: float = 0.0,
               skip_nonfinite: int = 0):
    self.skip_nonfinite, self.nonfinite = skip_nonfinite, 0
    self.writer, self.curriculum, self.task_names = writer, curriculum, tuple(task_names)
    self.log_every, self.total, self.start = log_every, total_steps, start
    self.speed = Throughput(peak_flops_total, total_steps)
    self.last: dict[str, float] = {}   # the latest value of every logged scalar
    self._pending = None
    self._interval: list[dict] = []
    self._once: dict[str, float] = {}
    self._exact = np.zeros((len(self.task_names), 2))
    self.flops_total = flops_total  # counted training FLOPs of the run (saved with checkpoints)

  def note(self, scalars: dict) -> None:
    """Scalars to log once, with the next logged step (compile time, memory)."""
    self._once.update(scalars)

  def add(self, step: int, metrics: dict, flops: float) -> None:
    """Records `step`'s metrics (still on device); finishes the step before it."""
    self.flush()
    self._pending = (step, metrics, flops)

  def flush(self) -> None:
    """Finishes the pending step: the curriculum must see every step before a save or eval."""
    if self._pending is not None:
      pending, self._pending = self._pending, None
      self._finish(*pending)

  def close_interval(self, step: int) -> None:
    """Reports the steps since the last report (a run stopped early ends mid-interval)."""
    self.flush()
    if self._interval:
      self._report(step)

  def record(self, step: int, scalars: dict) -> None:
    self.writer.write(step, scalars)
    self.last.update(scalars)

  def _finish(self, step: int, metrics: dict, flops: float) -> None:
    metrics = dict(metrics)
    tokens = float(metrics.pop("tokens", 0.0))
    counts = [metrics.pop(k, None) for k in ("exact", "count", "reward_sum", "samples")]
    host = to_host(metrics)
    if self._finite(step, host):  # a skipped step has nothing to average or teach
      if counts[0] is not None:
        self._update_curriculum(step, *counts)
      self._interval.append(host)
    self.flops_total += flops  # a skipped step was computed all the same
    if step == self.start + 1:
      self.speed.start(step)  # the first step includes compilation: not timed
    else:
      self.speed.add(flops, tokens)
    if step % self.log_every == 0 or step == self.total:
      self._report(step)

  def _finite(self, step: int, host: dict) -> bool:
    """False for a step whose loss or gradient norm is not finite, if train.skip_nonfinite
    still allows skipping one (the optimizer did not apply it); raises Diverged otherwise."""
    bad = ", ".join(f"{k} {host[k]}" for k in FINITE if k in host and not math.isfinite(host[k]))
    if not bad:
      return True
    self.nonfinite += 1
    if self.nonfinite > self.skip_nonfinite:
      raise Diverged(f"{bad} at step {step}")
    self.writer.console(f"step {step}: {bad}; update skipped ({self.nonfinite} of "
                        f"train.skip_nonfinite={self.skip_nonfinite})")
    return False

  def _update_curriculum(self, step: int, exact, count, reward=None, samples=None) -> None:
    """[task, level] counts: exact matches of `count` answers; reward steps also the sum of
    `samples` sampled rewards."""
    exact, count = np.asarray(exact), np.asarray(count)
    changes = self.curriculum.update(step, exact, count)
    if changes:
      self.writer.console(f"curriculum at step {step}: " + ", ".join(
          f"{k} -> level {v} from step {step + self.curriculum.lag}" for k, v in changes.items()))
    moved = self.curriculum.update_focus(
        step, exact, count, *(None if x is None else np.asarray(x) for x in (reward, samples)))
    if moved:
      self.writer.console(f"focus at step {step}: " + ", ".join(moved))
    self._exact[:, 0] += exact.sum(axis=1)
    self._exact[:, 1] += count.sum(axis=1)

  def _update_mfu(self) -> dict[str, float]:
    """The update's own MFU, for objectives that report `update_flops` and `update_s` (reward
    steps, whose whole-loop MFU also pays for sampling and scoring)."""
    steps = [x for x in self._interval if "update_flops" in x and "update_s" in x]
    seconds = sum(x["update_s"] for x in steps)
    if not steps or seconds <= 0:
      return {}
    return {"perf/mfu_update": sum(x["update_flops"] for x in steps) / seconds / self.speed.peak}

  def _report(self, step: int) -> None:
    keys = sorted({k for x in self._interval for k in x})  # objectives may switch mid-interval
    avg = {f"train/{k}": float(np.mean([x[k] for x in self._interval if k in x])) for k in keys}
    avg.update(self.speed.report(step, self.flops_total))
    avg.update(self._update_mfu())
    avg["perf/train_flops"] = self.flops_total
    avg.update(self._once)
    for i, name in enumerate(self.task_names):
      if self._exact[i, 1]:
        avg[f"train/exact/{name}"] = self._exact[i, 0] / self._exact[i, 1]
      avg[f"curriculum/{name}"] = self.curriculum.current(name, step)
      if self.curriculum.focus is not None:
        avg[f"curriculum/focus/{name}"] = float(name in self.curriculum.focus.active)
    self._once, self._interval = {}, []
    self._exact[:] = 0
    self.record(step, avg)
    self.writer.console(step_line(step, self.total, avg))


def step_line(step: int, total: int, avg: dict) -> str:
  line = f"step {step}/{total}"
  for key, label, fmt in CONSOLE:
    if key in avg:
      line += f" | {label} {avg[key]:{fmt}}"
  if "perf/tokens_per_s" in avg:
    line += f" | {avg['perf/tokens_per_s']:,.0f} tok/s | MFU {100 * avg['perf/mfu']:.1f}%"
    if "perf/mfu_update" in avg:
      line += f" (update {100 * avg['perf/mfu_update']:.1f}%)"
    line += f" | ETA {format_duration(avg['perf/eta_s'])}"
  return line
