"""Reward per token: the tasks' per-character credit, its mapping onto tokens, and an
unbiased policy-gradient estimator that pushes each token the right way."""
import numpy as np
import pytest

from rf_jax import tasks
from rf_jax.rl_rollouts import token_credit
from rf_jax.rl import group_advantages, token_advantages
from rf_jax.vocab import phase1_vocab, text_vocab


def test_default_token_rewards_follow_the_scorer():
  copy, add, dyck = tasks.get("copy"), tasks.get("add"), tasks.get("dyck")
  ex = tasks.Example("copy:abc", "abc")
  assert copy.token_rewards(ex, "abc") == [1, 1, 1, 1]
  assert copy.token_rewards(ex, "axcd") == [1, 0, 1, 0, 0]  # 'd' overruns; wrong stop
  s = tasks.Example("add:9+8", "17")
  assert add.token_rewards(s, "7") == [1.0, 0.0]  # units line up from the end
  assert add.token_rewards(s, "27") == [0.0, 1.0, 1.0]
  d = tasks.make_example(dyck, 0, 0, 1)  # a scorer of its own: its score on every character
  wrong = "x" * 3
  assert dyck.token_rewards(d, wrong) == [dyck.score(d, wrong)] * 4
  verbal = tasks.get("verbal_copy")
  assert verbal.token_rewards(ex, "axcd") == copy.token_rewards(ex, "axcd")


def test_token_credit_maps_characters_to_tokens():
  v = phase1_vocab()
  ids = v.encode("ab") + [v.eos_id, v.pad_id, v.pad_id]
  np.testing.assert_allclose(token_credit(v, ids, [1.0, 0.0, 1.0], False), [1, 0, 1])
  no_eos = v.encode("abc")
  np.testing.assert_allclose(token_credit(v, no_eos, [1.0, 1.0, 0.0, 0.0], False), [1, 1, 0])
  trace = v.encode("11") + [v.ans_id] + v.encode("2") + [v.eos_id]
  np.testing.assert_allclose(token_credit(v, trace, [0.0, 1.0], True), [0, 0, 0, 0, 1])
  b = text_vocab("bytes")
  ids = b.encode("é") + [b.eos_id]  # one character, two byte tokens: the first byte has it
  np.testing.assert_allclose(token_credit(b, ids, [1.0, 1.0], False), [1, 0, 1])


def test_token_advantages_give_each_token_its_own_sign():
  # Two samples of one group, two answer tokens each, then <eos> (stop reward 1 for both):
  # sample 0 is right then wrong, sample 1 wrong then right.
  rewards = [np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])]
  own = token_advantages(rewards, group_size=2, n=4, discount=0.0)
  assert own[0, 0] > 0 and own[1, 0] < 0  # the first token: right beats wrong
  assert own[0, 1] < 0 and own[1, 1] > 0  # the second token: the other way round
  assert own[0, 2] == own[1, 2] == 0  # same stop for both: nothing to learn there
  assert (own[:, 3] == 0).all()  # past the end
  # Reward-to-go: the second tokens keep their signs; the first ones answer for the rest too,
  # and both samples total 2.
  togo = token_advantages(rewards, group_size=2, n=4)
  assert togo[0, 1] < 0 < togo[1, 1] and togo[0, 0] == togo[1, 0] == 0
  # Sequence credit sees the two equal totals and learns nothing at all.
  assert (group_advantages(np.array([[2.0, 2.0]]), "rloo") == 0).all()


def test_log_advantages_weigh_a_rare_hit_like_a_common_one():
  # With r - mean a group's gradient estimates G d E[r], which fades with the pass rate p;
  # (r - mean) / mean estimates G d log E[r] = G d E[r] / p, as maximum likelihood's d log p
  # does: one hit in eight pushes 7, against 1 per hit for four in eight (0.875 against 0.5).
  rare, common = np.zeros(8), np.zeros(8)
  rare[0], common[:4] = 1, 1
  r = np.stack([rare, common])
  log = group_advantages(r, "log")
  np.testing.assert_allclose(log[0], (rare - 1 / 8) * 8, atol=1e-6)
  np.testing.assert_allclose(log[1], (common - 0.5) * 2, atol=1e-6)
  assert log[0, 0] / log[1, 0] == pytest.approx(7.0)
  assert (group_advantages(np.full((1, 8), 0.0), "log") == 0).all()  # no hit: no estimate
  # A positive pool mean below 1 / group (partial credit) divides by 1 / group, not by it.
  tiny = group_advantages(np.array([[0.01, 0.0, 0.0, 0.0]]), "log")
  np.testing.assert_allclose(tiny[0], (np.array([0.01, 0, 0, 0]) - 0.0025) * 4, atol=1e-6)


def test_token_advantages_take_each_kind_per_position():
  # Position 0: one hit in four; position 1: two in four; position 2: only two samples
  # reach it (the others ended), and they disagree.
  rewards = [np.array([1.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0]),
             np.array([0.0, 0.0])]
  own = lambda kind: token_advantages(rewards, 4, 3, discount=0.0, kind=kind)
  col0 = np.array([1.0, 0, 0, 0])
  np.testing.assert_allclose(own("grpo")[:, 0], (col0 - 0.25) / col0.std(), atol=1e-6)
  np.testing.assert_allclose(own("log")[:, 0], (col0 - 0.25) * 4, atol=1e-6)
  np.testing.assert_allclose(own("mean")[:, 1], [0.5, 0.5, -0.5, -0.5], atol=1e-6)
  np.testing.assert_allclose(own("grpo")[:2, 2], [1, -1], atol=1e-6)
  assert (own("grpo")[2:, 2] == 0).all()  # ended samples stay 0 under every kind
  loo = own("rloo")
  np.testing.assert_allclose(loo[:, 0], [1, -1 / 3, -1 / 3, -1 / 3], atol=1e-6)
  np.testing.assert_array_equal(loo, own("batch"))


def _grad_estimates(credit, theta, target, groups, group_size, rng):
  """Per-group policy-gradient estimates for a factorised 2-position policy softmax(theta[t])."""
  p = np.exp(theta) / np.exp(theta).sum(-1, keepdims=True)
  T, V = theta.shape
  n = groups * group_size
  actions = np.stack([rng.choice(V, size=n, p=p[t]) for t in range(T)], axis=1)
  r = (actions == target).astype(np.float64)  # reward per position
  if credit == "token":
    adv = token_advantages(list(r), group_size, T)
  else:  # one reward per sample: the total, leave-one-out baseline
    adv = np.repeat(group_advantages(r.sum(1).reshape(groups, group_size), "rloo")
                    .reshape(-1, 1), T, axis=1)
  score = np.eye(V)[actions] - p[None]  # d log softmax / d theta, [n, T, V]
  per_sample = adv[:, :, None] * score
  return per_sample.reshape(groups, group_size, T, V).mean(axis=1)


@pytest.mark.parametrize("credit", ["token", "sequence"])
def test_estimator_is_unbiased_on_a_toy_policy(credit):
  """J = sum_t p_t(target_t); dJ/dtheta_t = p_t(y) (onehot(y) - p_t). Both credits estimate it
  without bias; token credit with less variance."""
  rng = np.random.default_rng(0)
  theta = np.array([[0.5, -0.3, 0.1], [0.2, 0.0, -0.4]])
  target = np.array([0, 2])
  p = np.exp(theta) / np.exp(theta).sum(-1, keepdims=True)
  exact = np.stack([p[t, target[t]] * (np.eye(3)[target[t]] - p[t]) for t in range(2)])
  est = _grad_estimates(credit, theta, target, 40_000, 4, rng)
  mean, sem = est.mean(0), est.std(0) / np.sqrt(len(est))
  assert np.all(np.abs(mean - exact) < 4 * sem + 1e-4), (mean, exact, sem)
  assert np.all(np.sign(mean[:, target[0]][0]) == 1)


def test_token_credit_has_lower_variance_than_sequence_credit():
  rng = np.random.default_rng(1)
  theta, target = np.zeros((2, 3)), np.array([0, 2])
  var = {c: _grad_estimates(c, theta, target, 20_000, 4, rng)[:, 1].var(0).sum()
         for c in ("token", "sequence")}
  assert var["token"] < 0.8 * var["sequence"], var


@pytest.mark.slow
def test_token_credit_trains_through_the_rl_objective(tmp_path):
  import json
  from rf_jax import train
  from helpers import load_config
  grad_norms = {}
  for credit in ("sequence", "token"):
    c = load_config()
    c.objective.kind = "rl"
    c.data.update(tasks=("copy", "reverse"), levels=(1, 1))
    c.rl.update(prompts=16, group_size=8, prompt_len=24, max_new=8, credit=credit)
    c.train.update(steps=3, log_every=1, eval_every=0, eval_levels=(), checkpoint_every=0)
    train.run(c, str(tmp_path / credit))
    rows = [json.loads(line) for line in (tmp_path / credit / "metrics.jsonl").open()]
    grad_norms[credit] = [r["train/grad_norm"] for r in rows if "train/grad_norm" in r]
  assert len(grad_norms["token"]) == 3 and np.all(np.isfinite(grad_norms["token"]))
  # The same rollouts (same seed, same first policy), other advantages: another gradient.
  assert grad_norms["token"][0] > 0 and grad_norms["token"][0] != grad_norms["sequence"][0]
