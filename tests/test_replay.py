"""Self-imitation (rl.replay): the buffer of exact answers the policy found, how it draws
them, its saved state, and the update it feeds: the replayed answers enter the rows with
their advantage and one step raises their likelihood."""
import jax
import numpy as np

from rf_jax.data.packing import encode_prompt, encode_target
from rf_jax.replay import Entry, Replay
from rf_jax.rl import token_logprobs
from rf_jax import tasks as tasks_lib

from helpers import load_config, rl_trainer


def test_buffer_keeps_the_newest_answer_per_prompt_and_drops_the_oldest_prompts():
  r = Replay(capacity=2)
  r.add(0, 1, [7, 8], np.array([3, 2]))
  r.add(0, 1, [9], np.array([4, 2]))
  r.add(0, 1, [7, 8], np.array([5, 2]))  # the same prompt again: replaced, now the newest
  r.add(0, 1, [6], np.array([6, 2]))     # over capacity: [9], the oldest, goes
  r.add(1, 2, [6], np.array([1, 2]))     # another family and level: a bucket of its own
  assert len(r) == 3 and r.sizes(2).tolist() == [2, 1]
  kept = {(e.task, e.prompt_ids): e.completion.tolist()
          for e, _ in r.draw(np.random.default_rng(0), 200, lambda t, lv: 1.0)}
  assert kept == {(0, (7, 8)): [5, 2], (0, (6,)): [6, 2], (1, (6,)): [1, 2]}
  assert len(Replay(0).draw(np.random.default_rng(0), 4, lambda t, lv: 1.0)) == 0


def test_draws_follow_the_weights_per_bucket_not_per_entry():
  r = Replay(capacity=100)
  for i in range(90):  # a family that found many answers ...
    r.add(0, 1, [i], np.array([2]))
  r.add(1, 1, [0], np.array([2]))  # ... and one that found one
  drawn = r.draw(np.random.default_rng(0), 4000, lambda t, lv: [0.25, 0.75][t])
  share = np.mean([e.task == 1 for e, _ in drawn])
  assert abs(share - 0.75) < 0.03
  assert {w for _, w in drawn} == {0.25, 0.75}
  assert r.draw(np.random.default_rng(0), 8, lambda t, lv: 0.0) == []  # all solved


def test_state_round_trips_and_draws_the_same():
  r = Replay(capacity=3)
  for i in range(5):
    r.add(i % 2, 1 + i % 3, [i, i + 1], np.array([i, 2]))
  again = Replay(capacity=3)
  again.load_state(r.state())
  draw = lambda b: [(e.task, e.level, e.prompt_ids, e.completion.tolist())
                    for e, _ in b.draw(np.random.default_rng(3), 20, lambda t, lv: t + lv)]
  assert draw(again) == draw(r) and again.state() == r.state()


def _trainer(replay, **rl):
  c = load_config()
  c.model.update(d_model=16, n_layers=1, n_heads=2, mlp_dim=32)
  c.rl.update(prompts=4, group_size=2, max_new=6, prompt_len=16, replay=replay,
              replay_samples=3, replay_coef=2.0, answer_alphabet=True, **rl)
  return rl_trainer(c, ("copy", "parity"), lr=3e-2)


def test_the_update_rows_carry_the_replayed_answers_and_raise_their_likelihood():
  trainer, state = _trainer(replay=8)
  v = trainer.vocab
  ex = tasks_lib.make_example(tasks_lib.get("copy"), 0, 0, 1)
  prompt, answer = encode_prompt(v, ex.prompt), np.asarray(encode_target(v, ex, False))
  trainer.replay.add(0, 1, prompt, answer)
  replayed = trainer.replayed(step=1)
  assert len(replayed) == 3  # the only bucket, weight 1 - UNSEEN pass rate
  batch, drawn, _ = trainer.collect(state["params"], 1)
  with_replay = trainer.rows(batch, drawn, replayed)
  without = trainer.rows(batch, drawn)
  extra = with_replay["action_mask"].sum() - without["action_mask"].sum()
  assert extra == 3 * len(answer)
  assert np.isclose(with_replay["advantages"].sum() - without["advantages"].sum(),
                    2.0 * 3 * len(answer), atol=1e-3)
  # Updates on the replayed answer alone raise the policy's log-likelihood of it.
  rows = trainer.rows([], [], replayed)
  logp = lambda params: float((token_logprobs(params, trainer.graphdef, rows, trainer._allowed,
                                              v.eos_id)[0] * rows["action_mask"]).sum())
  with jax.set_mesh(trainer.mesh):
    start = logp(state["params"])
    for _ in range(3):
      state, _ = trainer._update(state, rows, None)
    assert logp(state["params"]) > start + 0.5


def test_successes_enter_the_buffer_and_a_run_without_replay_keeps_none():
  trainer, state = _trainer(replay=8)
  for step in range(1, 6):
    groups = trainer.groups(state["params"], step, 0)[0]
    trainer.remember(groups)
    solved = {(g.prompt.task, tuple(g.prompt_ids)) for g in groups if g.exact.any()}
    kept = {(t, p) for (t, _), b in trainer.replay._buckets.items() for p in b}
    assert solved <= kept
  assert len(trainer.replay) > 0  # parity answers from {0, 1, <eos>}: right a ninth of the time
  off, state = _trainer(replay=0)
  off.remember(off.groups(state["params"], 1, 0)[0])
  assert len(off.replay) == 0 and off.replayed(1) == []


def test_a_solved_family_is_replayed_only_with_a_floor():
  for floor, expected in ((0.0, 0), (0.1, 3)):
    trainer, _ = _trainer(replay=8, replay_floor=floor)
    trainer.replay.add(0, 1, [5, 6], np.array([7, trainer.vocab.eos_id]))
    trainer.curriculum.pass_rate["copy"][0] = 1.0  # solved: 1 - p gives it no weight
    replayed = trainer.replayed(step=1)
    assert len(replayed) == expected
    assert all(np.isclose(w, floor) for _, w in replayed)


def test_answers_marked_solved_are_drawn_by_their_priority_and_the_marks_are_saved():
  r = Replay(capacity=100)
  for i in range(100):
    r.add(0, 1, [i], np.array([i, 2]))
  for i in range(50):  # the greedy policy writes half of them
    r.mark(_entry(0, 1, [i], [i, 2]), True)
  r.mark(_entry(0, 1, [60], [9, 2]), True)  # another answer than the kept one: not marked
  assert np.isclose(r.solved_share(), 0.5)
  drawn = r.draw(np.random.default_rng(0), 4000, lambda t, lv: 1.0, solved_weight=0.1)
  share = np.mean([e.prompt_ids[0] < 50 for e, _ in drawn])
  assert abs(share - 0.1 / 1.1) < 0.02  # 50 x 0.1 against 50 x 1
  uniform = r.draw(np.random.default_rng(0), 4000, lambda t, lv: 1.0)
  assert abs(np.mean([e.prompt_ids[0] < 50 for e, _ in uniform]) - 0.5) < 0.03
  r.add(0, 1, [3], np.array([3, 2]))  # found again, the same answer: still solved
  r.add(0, 1, [4], np.array([7, 2]))  # a new answer: not yet written by the greedy policy
  again = Replay(capacity=100)
  again.load_state(r.state())
  assert np.isclose(again.solved_share(), 0.49) and again.state() == r.state()
  old = {"buckets": [[0, 1, [[[5], [5, 2]]]]]}  # saved before marks
  again.load_state(old)
  assert len(again) == 1 and again.solved_share() == 0.0


def _entry(task, level, prompt, completion):
  return Entry(task, level, tuple(prompt), np.array(completion, np.int32))


def test_a_step_marks_each_replayed_answer_by_whether_the_greedy_policy_wrote_it():
  trainer, state = _trainer(replay=8, replay_priority=0.5)
  v = trainer.vocab
  ex = tasks_lib.make_example(tasks_lib.get("copy"), 0, 0, 1)
  prompt, answer = encode_prompt(v, ex.prompt), np.asarray(encode_target(v, ex, False))
  trainer.replay.add(0, 1, prompt, answer)
  state, metrics = trainer(state, 1)  # from random weights the greedy policy writes another
  assert metrics["replay_greedy_exact"] == 0.0 and trainer.replay.solved_share() == 0.0
  rows = trainer.rows([], [], trainer.replayed(step=2))
  with jax.set_mesh(trainer.mesh):
    for _ in range(20):  # imitated until the greedy policy writes it
      state, _ = trainer._update(state, rows, None)
  state, metrics = trainer(state, 2)
  assert metrics["replay_greedy_exact"] == 1.0 and trainer.replay.solved_share() == 1.0
