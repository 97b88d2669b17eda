"""Which level each task's examples come from, as a function of the training step.

Three kinds (config.curriculum.kind):
- `fixed`: levels uniform in data.levels = (lo, hi).
- `scheduled`: the current level rises linearly from lo to hi over the run.
- `adaptive`: per task, the current level rises when the rolling exact-match rate at that
  level is >= raise_at and falls when it is < lower_at (after `min_examples` examples).

With `scheduled` and `adaptive`, a fraction `mix_lower` of examples come from the levels
below the current one, so easier skills are rehearsed. An adaptive decision taken while
processing step s applies from step s + lag: the data pipeline prefetches a few batches, and
a lag longer than its buffer makes the level of every row a function of the saved history,
so a resumed run sees exactly the data an uninterrupted one would.

Every kind also keeps a moving pass rate per task and level; reward-based training can draw
its prompts by `learnability` (pass rates near 0.5 teach most), and with `focus` (rf_jax/focus.py)
give a share of them to a few families at a time.
"""
from __future__ import annotations

import bisect
import dataclasses

import numpy as np

from rf_jax.errors import ConfigError
from rf_jax.focus import Focus

KINDS = ("fixed", "scheduled", "adaptive")
UNSEEN = 0.5  # the pass rate assumed of a level before any example of it was scored
PASS_EMA = 0.2  # weight of each step's exact-match rate in the moving pass rate
LEARNABILITY_FLOOR = 0.05


@dataclasses.dataclass
class Curriculum:
  tasks: tuple[str, ...]
  lo: int
  hi: int
  kind: str = "fixed"
  total_steps: int = 1
  mix_lower: float = 0.25
  raise_at: float = 0.9
  lower_at: float = 0.1
  min_examples: int = 200
  lag: int = 8
  # task -> sorted [(from_step, level)]: the adaptive history, saved with checkpoints
  history: dict = dataclasses.field(default_factory=dict)
  # task -> [exact, count] at the current level since the last change
  rolling: dict = dataclasses.field(default_factory=dict)
  # task -> [pass rate per level]: a moving average of every step's exact-match rate
  pass_rate: dict = dataclasses.field(default_factory=dict)
  focus: Focus | None = None  # which families reward prompts concentrate on

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ConfigError(f"curriculum.kind must be one of {KINDS}, got {self.kind!r}")
    if not 1 <= self.lo <= self.hi:
      raise ConfigError(f"data.levels ({self.lo}, {self.hi}) must satisfy 1 <= lo <= hi")
    for t in self.tasks:
      self.history.setdefault(t, [(0, self.lo)])
      self.rolling.setdefault(t, [0, 0])
      self.pass_rate.setdefault(t, [UNSEEN] * self.hi)

  def current(self, task: str, step: int) -> int:
    """The task's current level at `step` (the top level for `fixed`)."""
    if self.kind == "fixed":
      return self.hi
    if self.kind == "scheduled":
      frac = min(max(step, 0) / max(self.total_steps, 1), 1.0)
      return min(self.lo + int(frac * (self.hi - self.lo + 1)), self.hi)
    hist = self.history[task]
    i = bisect.bisect_right([s for s, _ in hist], step) - 1
    return hist[max(i, 0)][1]

  def draw(self, rng: np.random.Generator, task: str, step: int) -> int:
    """The level of one example of `task` in the batch of `step`."""
    if self.kind == "fixed":
      return int(rng.integers(self.lo, self.hi + 1))
    cur = self.current(task, step)
    if cur > self.lo and rng.random() < self.mix_lower:
      return int(rng.integers(self.lo, cur))
    return cur

  def learnability(self, task: str, step: int) -> np.ndarray:
    """Weights of the levels lo..current of `task` by what they can teach: p (1 - p) of the
    level's pass rate p (a level always passed or never passed gives no reward contrast),
    plus a floor that keeps every level rehearsed."""
    p = np.asarray(self.pass_rate[task][self.lo - 1:self.current(task, step)])
    return p * (1 - p) + LEARNABILITY_FLOOR

  def draw_learnable(self, rng: np.random.Generator, task: str, step: int) -> int:
    """A level of `task` drawn in proportion to `learnability`."""
    w = self.learnability(task, step)
    return self.lo + int(rng.choice(len(w), p=w / w.sum()))

  def _track_pass_rate(self, exact: np.ndarray, count: np.ndarray) -> None:
    for i, task in enumerate(self.tasks):
      rates = self.pass_rate[task]
      for lv in range(min(len(rates), exact.shape[1])):
        if count[i, lv]:
          seen = exact[i, lv] / count[i, lv]
          rates[lv] = seen if rates[lv] == UNSEEN else (1 - PASS_EMA) * rates[lv] + PASS_EMA * seen

  def update(self, step: int, exact: np.ndarray, count: np.ndarray) -> dict[str, int]:
    """Feeds one step's teacher-forced exact matches ([task, level-1] arrays); returns changes.

    Teacher-forced exact match (every answer token is the argmax) is the same event as a
    greedy decode reproducing the answer, so no sampling is needed to measure it.
    """
    changes = {}
    self._track_pass_rate(exact, count)
    if self.kind != "adaptive":
      return changes
    for i, task in enumerate(self.tasks):
      cur = self.current(task, step)
      pending = self.history[task][-1][0] > step  # a change not yet in force
      if pending:
        continue
      r = self.rolling[task]
      r[0] += int(exact[i, cur - 1])
      r[1] += int(count[i, cur - 1])
      if r[1] < self.min_examples:
        continue
      rate = r[0] / r[1]
      new = cur + 1 if rate >= self.raise_at else cur - 1 if rate < self.lower_at else cur
      new = min(max(new, self.lo), self.hi)
      if new != cur:
        self.history[task].append((step + self.lag, new))
        changes[task] = new
      self.rolling[task] = [0, 0] if new != cur else [r[0] // 2, r[1] // 2]  # decay old evidence
    return changes

  def update_focus(self, step: int, exact: np.ndarray, count: np.ndarray,
                   reward: np.ndarray | None = None,
                   samples: np.ndarray | None = None) -> list[str]:
    """Feeds one step's [task, level] counts to the focus (after `update`): exact matches
    of `count` answers, and the sum of `samples` sampled rewards (none on steps that sample
    nothing); returns what changed. A family whose adaptive level was raised past the first
    (or will be: a pending change) has learned it."""
    if self.focus is None:
      return []
    reward = np.zeros(exact.shape) if reward is None else reward
    samples = np.zeros(exact.shape) if samples is None else samples
    raised = np.array([self.kind == "adaptive" and self.history[t][-1][1] > self.lo
                       for t in self.tasks])
    first = np.stack([x[:, self.lo - 1] for x in (exact, count, reward, samples)], axis=1)
    return self.focus.update(step, first, raised)

  def state(self) -> dict:
    out = {"history": {t: [list(x) for x in h] for t, h in self.history.items()},
           "rolling": {t: list(r) for t, r in self.rolling.items()},
           "pass_rate": {t: list(r) for t, r in self.pass_rate.items()}}
    if self.focus is not None:
      out["focus"] = self.focus.state()
    return out

  def load_state(self, state: dict) -> None:
    for t in self.tasks:
      if t in state.get("history", {}):
        self.history[t] = [tuple(x) for x in state["history"][t]]
        self.rolling[t] = list(state["rolling"][t])
      if t in state.get("pass_rate", {}):
        self.pass_rate[t] = [float(x) for x in state["pass_rate"][t]]
    if self.focus is not None:
      self.focus.load_state(state.get("focus", {}))
