"""The console's pace figures: the ETA is the soonest of the last step, the wall-clock
budget and the FLOP budget."""
import time

import pytest

from rf_jax.metrics import Throughput


def _interval(speed, steps=4, flops=1e9):
  speed.start(0)
  for _ in range(steps):
    speed.add(flops, 100.0)
  time.sleep(0.05)
  return speed.report(steps, flops_total=steps * flops)


def test_eta_counts_steps_without_budgets():
  r = _interval(Throughput(1e12, total_steps=100))
  assert r["perf/eta_s"] == pytest.approx(96 * r["perf/step_time_s"])


def test_eta_is_the_flop_budget_when_it_comes_first():
  speed = Throughput(1e12, total_steps=100_000)
  speed.budgets(None, flop_budget=12e9)  # 4 of 12 GFLOP spent: two more intervals
  r = _interval(speed)
  assert r["perf/eta_s"] == pytest.approx(8 * r["perf/step_time_s"])


def test_eta_is_the_time_budget_when_it_comes_first():
  speed = Throughput(1e12, total_steps=100_000)
  speed.budgets(time.time() + 30.0, flop_budget=1e18)
  r = _interval(speed)
  assert 29.0 < r["perf/eta_s"] <= 30.0
