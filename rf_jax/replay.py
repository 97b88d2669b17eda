"""Self-imitation for reward runs: the answers the policy itself found that the verifier
scored exactly right, kept per family and level and replayed in later updates.

A reward-only policy from scratch finds a family's right answer by chance (1 in 26 per
letter of a copy answer) and, with a policy gradient, learns from that sample once. Kept,
and replayed with its family and level drawn in proportion to 1 - their greedy pass rate
(self-imitation learning, Oh et al. 2018, replays the return above the value, clipped at 0;
here the pass rate is the value), every success teaches until its family is solved, and
teaches again if the family drifts. Nothing outside the policy's own samples and the verifier's
exact-match verdict enters the buffer.

Within a bucket an answer that the greedy policy already wrote when it was last replayed
(`mark`) is drawn with weight `solved_weight` against 1 for the others: replaying what the
policy already writes moves it little (the gradient of log p vanishes as p nears 1), and a
family whose easy prompts are solved keeps its few answers to the hard ones (a reverse of
three letters among many of one or two) in the replay (prioritised replay, Schaul et al. 2016).

Host state, numpy only; saved with the checkpoint (`state` / `load_state`) so a resumed run
replays what the uninterrupted run would.
"""
from __future__ import annotations

import collections
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Entry:
  task: int
  level: int
  prompt_ids: tuple[int, ...]
  completion: np.ndarray  # the completion's tokens, up to and including <eos>


class Replay:
  """Exact answers per (task, level), at most `capacity` prompts each, oldest out first; each
  with whether the greedy policy wrote it when last replayed."""

  def __init__(self, capacity: int):
    self.capacity = capacity  # checked with the other rl fields (check_rl_config)
    self._buckets: dict[tuple[int, int], collections.OrderedDict] = {}

  def __len__(self) -> int:
    return sum(len(b) for b in self._buckets.values())

  def add(self, task: int, level: int, prompt_ids, completion: np.ndarray,
          solved: bool = False) -> None:
    """Keeps `completion` as the answer to the prompt (the newest answer of a prompt wins and
    counts as newest; the same answer again keeps its mark)."""
    if not self.capacity:
      return
    bucket = self._buckets.setdefault((task, level), collections.OrderedDict())
    key = tuple(int(x) for x in prompt_ids)
    completion = np.asarray(completion, np.int32)
    old = bucket.pop(key, None)
    same = old is not None and np.array_equal(old[0], completion)
    bucket[key] = [completion, bool(solved or (same and old[1]))]
    while len(bucket) > self.capacity:
      bucket.popitem(last=False)

  def mark(self, entry: Entry, solved: bool) -> None:
    """Records whether the greedy policy wrote `entry`'s answer (if it is still kept)."""
    kept = self._buckets.get((entry.task, entry.level), {}).get(tuple(entry.prompt_ids))
    if kept is not None and np.array_equal(kept[0], entry.completion):
      kept[1] = bool(solved)

  def draw(self, rng: np.random.Generator, n: int, weight,
           solved_weight: float = 1.0) -> list[tuple[Entry, float]]:
    """`n` entries with their weights: a (task, level) bucket in proportion to
    `weight(task, level)` (>= 0), then an entry of it, one marked solved with weight
    `solved_weight` (> 0) against 1 for the others. Empty when no bucket has weight."""
    keys = sorted(k for k, b in self._buckets.items() if b)
    w = np.array([max(float(weight(*k)), 0.0) for k in keys])
    if not n or not keys or w.sum() <= 0:
      return []
    out, items = [], {}
    for b in rng.choice(len(keys), size=n, p=w / w.sum()):
      if b not in items:  # listed once per draw, not once per entry drawn
        listed = list(self._buckets[keys[b]].items())
        p = np.array([solved_weight if solved else 1.0 for _, (_, solved) in listed])
        items[b] = listed, p / p.sum()
      listed, p = items[b]
      prompt, (completion, _) = listed[int(rng.choice(len(listed), p=p))]
      out.append((Entry(keys[b][0], keys[b][1], prompt, completion), float(w[b])))
    return out

  def sizes(self, n_tasks: int) -> np.ndarray:
    """Entries kept per task, all levels together."""
    out = np.zeros(n_tasks, np.int32)
    for (t, _), b in self._buckets.items():
      out[t] += len(b)
    return out

  def solved_share(self) -> float:
    """The share of kept answers marked solved."""
    marks = [solved for b in self._buckets.values() for _, solved in b.values()]
    return float(np.mean(marks)) if marks else 0.0

  def state(self) -> dict:
    return {"buckets": [[t, lv, [[list(p), c.tolist(), int(solved)]
                                 for p, (c, solved) in b.items()]]
                        for (t, lv), b in sorted(self._buckets.items())]}

  def load_state(self, state: dict) -> None:
    self._buckets = {}
    for t, lv, items in state.get("buckets", []):
      for prompt, completion, *solved in items:  # saved before marks: none solved
        self.add(int(t), int(lv), prompt, np.asarray(completion, np.int32), any(solved))
