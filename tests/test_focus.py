"""The focus curriculum: a few families at a time take a share of the reward prompts, leave
when they learn their first level or stall, and the rotation moves on; its state survives a
save; bad settings stop with one line."""
import json

import numpy as np
import pytest

from rf_jax import train
from rf_jax.curriculum import Curriculum
from rf_jax.data.inputs import make_curriculum
from rf_jax.data.tasks import TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.focus import Focus
from rf_jax.rl_rollouts import draw_prompts

from helpers import load_config

TASKS = ("copy", "reverse", "parity", "dyck")


def feed(cur: Curriculum, step: int, first: dict, n: int = 10) -> list[str]:
  """One step's counts at level 1 for the named tasks: `first[task]` = greedy hits out of n,
  or (hits, mean sampled reward of 4n samples)."""
  exact, count, reward, samples = np.zeros((4, len(cur.tasks), cur.hi))
  for t, got in first.items():
    hits, mean = got if isinstance(got, tuple) else (got, got / n)
    i = cur.tasks.index(t)
    exact[i, 0], count[i, 0], reward[i, 0], samples[i, 0] = hits, n, mean * 4 * n, 4 * n
  cur.update(step, exact, count)
  return cur.update_focus(step, exact, count, reward, samples)


def test_focused_families_take_their_share_of_the_prompts():
  cur = Curriculum(TASKS, 1, 2, kind="adaptive", focus=Focus(TASKS, 1, share=0.6, window=5))
  mix = TaskMixture.build(TASKS, None, (1, 2))
  uniform = [p.task for p in draw_prompts(mix, cur, 0, 1, 4000)]
  assert abs(np.mean(np.array(uniform) == 0) - 0.25) < 0.03  # nothing focused yet
  assert feed(cur, 1, {}) == ["copy enters"]
  picked = np.array([p.task for p in draw_prompts(mix, cur, 0, 2, 4000)])
  assert abs(np.mean(picked == 0) - 0.6) < 0.03
  assert abs(np.mean(picked == 3) - 0.4 / 3) < 0.03  # the rest share what is left


def test_a_family_stays_while_it_rises_and_leaves_when_it_stalls_or_learns():
  cur = Curriculum(TASKS, 1, 2, kind="adaptive", min_examples=10_000,
                   focus=Focus(TASKS, 1, window=5, gain=0.25))
  feed(cur, 1, {})
  for step, hits in zip(range(2, 7), (2, 2, 3, 3, 3)):  # 0.26 over the window, up from 0
    moved = feed(cur, step, {"copy": hits})
  assert moved == [] and list(cur.focus.active) == ["copy"]
  for step in range(7, 12):  # 0.30: log-odds 0.2 above the last window's 0.26, not 0.25
    moved = feed(cur, step, {"copy": 3})
  assert moved == ["copy leaves (stalled, reward 0.300 from 0.260)", "reverse enters"]
  for step in range(12, 17):
    moved = feed(cur, step, {"reverse": 10})
  assert moved == ["reverse leaves (learned, exact 1.00)", "parity enters"]
  # A level raised by the adaptive curriculum (pending or in force) is learned at once, and
  # the rotation skips such families; once round, it comes back to the stalled copy.
  cur.history["dyck"].append((20, 2))
  cur.history["parity"].append((20, 2))
  moved = feed(cur, 17, {})
  assert moved == ["parity leaves (learned)", "copy enters"]
  restored = Curriculum(TASKS, 1, 2, kind="adaptive", focus=Focus(TASKS, 1, window=5))
  restored.load_state(json.loads(json.dumps(cur.state())))
  assert restored.focus.state() == cur.focus.state()


def test_a_family_enters_with_its_recent_rate_as_the_bar():
  cur = Curriculum(TASKS, 1, 1, kind="fixed", focus=Focus(TASKS, 1, window=4))
  moved = [feed(cur, step, {"reverse": 5, "copy": 0}) for step in range(1, 6)]
  assert moved[-1] == ["copy leaves (stalled, reward 0.000 from 0.000)", "reverse enters"]
  assert cur.focus.active["reverse"][2] == pytest.approx(0.5)  # what it scored unfocused
  moved = [feed(cur, step, {"reverse": 5}) for step in range(6, 10)]
  assert moved[-1] == ["reverse leaves (stalled, reward 0.500 from 0.500)", "parity enters"]


def test_rising_reward_keeps_a_family_in_focus_before_its_exact_match_moves():
  cur = Curriculum(TASKS, 1, 1, kind="fixed", focus=Focus(TASKS, 1, window=4))
  moved = [feed(cur, step, {"copy": (0, 0.02 + 0.01 * step)}) for step in range(1, 14)]
  assert not any(moved[1:]) and list(cur.focus.active) == ["copy"]  # 3 windows, no hit
  assert cur.focus.active["copy"][2] == pytest.approx(0.135)  # steps 10-13: 0.12 to 0.15


def test_patience_lets_a_rising_family_miss_one_window_and_keeps_its_bar():
  cur = Curriculum(TASKS, 1, 1, kind="fixed", focus=Focus(TASKS, 1, window=4, patience=1))
  moved = [feed(cur, step, {"copy": (0, 0.02)}) for step in range(1, 6)]
  assert moved[-1][0].startswith("copy leaves (stalled")  # no patience before a first gain
  cur = Curriculum(TASKS, 1, 1, kind="fixed", focus=Focus(TASKS, 1, window=4, patience=1))
  feed(cur, 1, {})
  for step in range(2, 6):  # 0.3 beats the entry bar of 0: one miss allowed from here
    feed(cur, step, {"copy": (0, 0.3)})
  assert cur.focus.active["copy"][:3] == [1, 5, pytest.approx(0.3)]
  for step in range(6, 10):  # 0.31 misses the bar (0.3 + 0.25 log-odds): the miss is spent
    moved = feed(cur, step, {"copy": (0, 0.31)})
  assert moved == [] and cur.focus.active["copy"][:3] == [0, 9, pytest.approx(0.3)]
  for step in range(10, 14):  # 0.37 beats 0.3: patience restored, bar raised
    moved = feed(cur, step, {"copy": (0, 0.37)})
  assert moved == [] and cur.focus.active["copy"][:3] == [1, 13, pytest.approx(0.37)]
  for step in range(14, 22):  # two misses in a row: it leaves at the second
    moved = feed(cur, step, {"copy": (0, 0.37)})
  assert moved == ["copy leaves (stalled, reward 0.370 from 0.370)", "reverse enters"]


def test_learned_families_keep_a_larger_share_among_the_unfocused():
  cur = Curriculum(TASKS, 1, 1, kind="fixed", focus=Focus(TASKS, 1, share=0.5, window=2,
                                                           keep=3.0))
  mix = TaskMixture.build(TASKS, None, (1, 1))
  feed(cur, 1, {})
  moved = [feed(cur, step, {"copy": 10}) for step in (2, 3)]
  assert moved[-1] == ["copy leaves (learned, exact 1.00)", "reverse enters"]
  assert cur.focus.learned == ["copy"]
  picked = np.array([p.task for p in draw_prompts(mix, cur, 0, 4, 6000)])
  assert abs(np.mean(picked == 1) - 0.5) < 0.03  # reverse, in focus
  assert abs(np.mean(picked == 0) - 0.5 * 3 / 5) < 0.03  # copy: 3 of the rest's 5 shares
  assert abs(np.mean(picked == 2) - 0.5 / 5) < 0.03
  restored = Curriculum(TASKS, 1, 1, kind="fixed", focus=Focus(TASKS, 1, window=2, keep=3.0))
  restored.load_state(json.loads(json.dumps(cur.state())))
  assert restored.focus.state() == cur.focus.state()


def test_a_state_saved_before_patience_resumes_with_its_misses_capped():
  focus = Focus(TASKS, 1, window=4, patience=1)
  focus.load_state({"turn": 1, "active": {"copy": [700, 700, 0.1, 0, 0, 0, 0]}})
  assert focus.active["copy"][0] == 1 and focus.learned == []


@pytest.mark.parametrize("change, message", [
    (dict(focus=4), "between 1 and one fewer"),
    (dict(focus=1, focus_share=1.0), "focus_share"),
    (dict(focus=1, focus_window=0), "focus_window"),
    (dict(focus=1, focus_patience=-1), "focus_patience"),
    (dict(focus=1, focus_keep=0.0), "focus_keep"),
])
def test_bad_focus_settings_are_one_line_errors(change, message):
  config = load_config()
  config.objective.kind = "rl"
  config.curriculum.update(change)
  with pytest.raises(ConfigError, match=message):
    make_curriculum(config, TASKS)


def test_focus_on_a_next_token_run_is_a_one_line_error(tmp_path):
  config = load_config()
  config.data.tasks = TASKS
  config.curriculum.focus = 1
  with pytest.raises(ConfigError, match="objective 'next_token' draws none"):
    train.run(config, str(tmp_path))
