"""Console, TensorBoard and JSONL metrics (process 0 only); throughput, MFU and ETA."""
from __future__ import annotations

import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

# Dense bf16 peak FLOP/s per device (vendor figures).
PEAK_FLOPS = {
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12,
    "TPU v5": 459e12, "TPU v6 lite": 918e12, "TPU v6e": 918e12,
    "NVIDIA A100": 312e12, "NVIDIA H100": 989e12, "NVIDIA H200": 989e12,
}


@functools.lru_cache(maxsize=None)  # once per process: every run in it (knowledge stages, tests)
def measure_matmul_peak(sizes=(1024, 2048), repeats: int = 20) -> float:
  """The CPU 'peak': FLOP/s of the fastest jitted f32 n x n matmul on one local device.

  The best of many repeats over two sizes, because a 2-core VM's speed drifts from run to run
  (best of 5 at 2048 alone varied 439-487 GFLOP/s); a low peak would flatter MFU.
  """
  dev = jax.local_devices()[0]
  f = jax.jit(lambda x: x @ x)
  best_rate = 0.0
  for n in sizes:
    a = jax.device_put(jnp.ones((n, n), jnp.float32), dev)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
      t = time.perf_counter()
      f(a).block_until_ready()
      best = min(best, time.perf_counter() - t)
    best_rate = max(best_rate, 2 * n ** 3 / best)
  return best_rate


def peak_flops_per_device(configured: float = 0.0) -> tuple[float, str]:
  """(peak FLOP/s, where it came from): config, the vendor table, or a measurement."""
  if configured > 0:
    return configured, "config"
  kind = jax.devices()[0].device_kind
  for name, flops in PEAK_FLOPS.items():
    if kind.startswith(name):
      return flops, f"table:{name}"
  return measure_matmul_peak(), "measured f32 matmul"


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class MetricWriter:
  """Writes scalars to the console, TensorBoard and `metrics.jsonl` on process 0."""

  def __init__(self, logdir: str, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._tb = self._jsonl = None
    if self.enabled:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(logdir, flush_secs=10)
      self._jsonl = JsonLines(f"{logdir}/metrics.jsonl")

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if not self.enabled:
      return
    for k, v in scalars.items():
      self._tb.add_scalar(k, float(v), step)
    self._jsonl.write(json.dumps({"step": step, **{k: float(v) for k, v in scalars.items()}}))

  def console(self, line: str) -> None:
    if self.enabled:
      print(line, flush=True)

  def close(self) -> None:
    if self.enabled:
      self._tb.close()
      self._jsonl.close()


class JsonLines:
  """An append-only log of JSON lines. A local file is appended and flushed per line; an
  object store (gs://) cannot append, so there the whole log is kept and the object
  rewritten at most every `every_s` seconds, and at close."""

  def __init__(self, path: str, every_s: float = 30.0):
    self.remote, self.every_s = "://" in path, every_s
    if self.remote:
      self._path = epath.Path(path)
      self._text = self._path.read_text() if self._path.exists() else ""
      self._written = time.monotonic()
    else:
      self._file = open(path, "a", encoding="utf-8")

  def write(self, line: str) -> None:
    if not self.remote:
      self._file.write(line + "\n")
      self._file.flush()
      return
    self._text += line + "\n"
    if time.monotonic() - self._written > self.every_s:
      self.flush()

  def flush(self) -> None:
    if self.remote:
      self._path.write_text(self._text)
      self._written = time.monotonic()

  def close(self) -> None:
    if self.remote:
      self.flush()
    else:
      self._file.close()


class Throughput:
  """Tokens/s, MFU and ETA over the steps since the last report (compile excluded).

  MFU counts the FLOPs each step reports (its objective's analytic count) against the
  peak of all devices. The ETA is the soonest of the last step, the wall-clock deadline and
  the FLOP budget (`budgets`), at the interval's pace.
  """

  def __init__(self, peak_flops_total: float, total_steps: int):
    self.peak, self.total_steps = peak_flops_total, total_steps
    self._t, self._step, self._tokens, self._flops = None, None, 0.0, 0.0
    self._deadline, self._flop_budget = None, 0.0

  def budgets(self, deadline: float | None, flop_budget: float) -> None:
    """The run's early stops: a time.time() deadline (or None) and a FLOP budget (or 0)."""
    self._deadline, self._flop_budget = deadline, flop_budget

  def start(self, step: int) -> None:
    self._t, self._step, self._tokens, self._flops = time.perf_counter(), step, 0.0, 0.0

  def add(self, flops: float, tokens: float) -> None:
    self._flops += flops
    self._tokens += tokens

  def report(self, step: int, flops_total: float = 0.0) -> dict[str, float]:
    """`flops_total`: the run's counted FLOPs so far, for the FLOP budget's ETA."""
    now = time.perf_counter()
    dt, dsteps = now - self._t, step - self._step
    if dsteps <= 0 or dt <= 0:
      return {}
    eta = (self.total_steps - step) * dt / dsteps
    if self._deadline is not None:
      eta = min(eta, max(self._deadline - time.time(), 0.0))
    if self._flop_budget > 0 and self._flops > 0:
      eta = min(eta, max(self._flop_budget - flops_total, 0.0) * dt / self._flops)
    out = {
        "perf/tokens_per_s": self._tokens / dt,
        "perf/step_time_s": dt / dsteps,
        "perf/mfu": self._flops / dt / self.peak,
        "perf/eta_s": eta,
    }
    self.start(step)
    return out


def to_host(metrics) -> dict[str, float]:
  return {k: float(np.asarray(v)) for k, v in jax.device_get(metrics).items()}
