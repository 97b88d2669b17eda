"""Which families a reward run concentrates its prompts on (config.curriculum.focus).

From scratch, reward teaches a family only once its prompts are a large share of the steps:
at 1/15 of a 15-family mixture copy's sampled reward stayed near 0.03 over 6,400 prompts,
while at 1/2 it reached 0.94 greedy exact match in 1,000 steps (docs/results.md). So `slots`
families at a time share `share` of the prompts, the others the rest, and the focus moves
on by itself:

- a family enters focus in a fixed rotation over the families, skipping those whose level
  has already been raised past the first (learned) and those already in focus, with its
  recent mean sampled reward (partial credit) at the first level as the bar to beat (a
  moving mean over about `window` steps);
- every `window` steps the window's counts at the first level are read: a greedy exact-match
  rate >= `learned_at` and it leaves (learned); a mean reward whose log-odds do not beat the
  bar's by `gain` and it leaves (stalled) and waits for the rotation to come round again;
  otherwise the window's mean reward becomes the bar and it stays for another window.
  Reward moves long before exact match does, and slowly at first: copy's first 500 focused
  steps took its exact match from 0.00 to 0.01 and its mean reward from 0.02 to 0.03;
- a family that beat its bar in a window may miss it in `patience` windows after that
  before it counts as stalled (the bar stays): mul left as stalled near the top, its reward
  going 0.694 -> 0.731 in a 250-step window;
- it also leaves as soon as the curriculum raises its level (learned);
- a family that left as learned keeps `keep` times its weight among the unfocused ones, as
  its first level drifts once it has few prompts: copy fell from 0.94 to 0.70 within 700
  steps of leaving.

The rotation and the windows are a pure function of the steps' counts, saved with the
curriculum, so a resumed run focuses where an uninterrupted one would.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from rf_jax.errors import ConfigError


@dataclasses.dataclass
class Focus:
  tasks: tuple[str, ...]
  slots: int
  share: float = 0.5
  window: int = 500
  gain: float = 0.25
  learned_at: float = 0.9
  patience: int = 0
  keep: float = 1.0
  # with gain in log-odds, a family near 0 must grow its reward by a share of it (0.02 ->
  # 0.026 at 0.25) and one near 0.5 by a share of what is left (0.6 -> 0.66)
  turn: int = 0  # the rotation's next family
  # task -> [misses left, window start, reward to beat, hits, count, reward sum, samples]:
  # the families in focus, with their first level's counts over the window
  active: dict = dataclasses.field(default_factory=dict)
  learned: list = dataclasses.field(default_factory=list)  # families that left as learned
  # task -> [reward sum, samples] at the first level, decaying by 1 - 1 / window a step: the
  # bar a family enters with, focused or not
  seen: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not 0 < self.slots < len(self.tasks):
      raise ConfigError(f"curriculum.focus={self.slots} families at a time must be between 1 "
                        f"and one fewer than the {len(self.tasks)} in data.tasks (0 = off)")
    if not 0 < self.share < 1:
      raise ConfigError(f"curriculum.focus_share is the focused families' share of the prompts, "
                        f"in (0, 1); got {self.share}")
    if self.window < 1:
      raise ConfigError(f"curriculum.focus_window must be >= 1 step, got {self.window}")
    if self.patience < 0 or self.keep <= 0:
      raise ConfigError(f"curriculum.focus_patience must be >= 0 windows and focus_keep > 0 "
                        f"(a weight multiplier); got {self.patience} and {self.keep}")
    for t in self.tasks:
      self.seen.setdefault(t, [0.0, 0.0])

  def probabilities(self, p: np.ndarray) -> np.ndarray:
    """The mixture's task probabilities `p`, the focused families' rescaled to `share`, the
    learned ones weighted by `keep` among the rest."""
    on = np.array([t in self.active for t in self.tasks])
    p = p * np.where([t in self.learned for t in self.tasks], self.keep, 1.0)
    p = p / p.sum()
    if not on.any() or on.all() or p[on].sum() <= 0 or p[~on].sum() <= 0:
      return p
    return np.where(on, self.share * p / p[on].sum(), (1 - self.share) * p / p[~on].sum())

  def update(self, step: int, first: np.ndarray, raised: np.ndarray) -> list[str]:
    """Feeds one step's counts at the first level, `first` = [task, (exact matches, count,
    reward sum, samples)], and which tasks are past it; returns what changed, as console
    phrases."""
    changes, keep = [], 1 - 1 / self.window
    for i, t in enumerate(self.tasks):
      s = self.seen[t]
      s[0], s[1] = keep * s[0] + float(first[i, 2]), keep * s[1] + float(first[i, 3])
      if t not in self.active:
        continue
      a = self.active[t]
      a[3:] = [x + float(y) for x, y in zip(a[3:], first[i])]
      why = "learned" if raised[i] else self._read_window(step, a)
      if why:
        del self.active[t]
        changes.append(f"{t} leaves ({why})")
        if why.startswith("learned") and t not in self.learned:
          self.learned.append(t)
    for _ in range(len(self.tasks)):
      if len(self.active) >= self.slots:
        break
      i, self.turn = self.turn, (self.turn + 1) % len(self.tasks)
      t = self.tasks[i]
      if t not in self.active and not raised[i]:
        total, n = self.seen[t]
        self.active[t] = [0, step, total / n if n else 0.0, 0, 0, 0, 0]
        changes.append(f"{t} enters")
    return changes

  def _read_window(self, step: int, a: list) -> str:
    """At the end of a window with examples: why the family leaves, or '' and `a` starts
    the next window (the bar raised if the family beat it, a miss spent if it did not)."""
    if step - a[1] < self.window or not a[4] or not a[6]:
      return ""
    rate, reward = a[3] / a[4], a[5] / a[6]
    if rate >= self.learned_at:
      return f"learned, exact {rate:.2f}"
    if log_odds(reward) >= log_odds(a[2]) + self.gain:
      a[:] = [self.patience, step, reward, 0, 0, 0, 0]
    elif a[0] > 0:
      a[:] = [a[0] - 1, step, a[2], 0, 0, 0, 0]
    else:
      return f"stalled, reward {reward:.3f} from {a[2]:.3f}"
    return ""

  def state(self) -> dict:
    return {"turn": self.turn, "active": {t: list(a) for t, a in self.active.items()},
            "seen": {t: list(s) for t, s in self.seen.items()}, "learned": list(self.learned)}

  def load_state(self, state: dict) -> None:
    self.turn = int(state.get("turn", 0)) % len(self.tasks)
    self.active = {t: list(a) for t, a in state.get("active", {}).items() if t in self.tasks}
    for a in self.active.values():  # older states kept the step a family entered here
      a[0] = min(int(a[0]), self.patience)
    self.learned = [t for t in state.get("learned", []) if t in self.tasks]
    for t, s in state.get("seen", {}).items():
      if t in self.tasks:
        self.seen[t] = [float(x) for x in s]


def log_odds(p: float) -> float:
  p = min(max(p, 1e-3), 1 - 1e-3)
  return float(np.log(p / (1 - p)))
