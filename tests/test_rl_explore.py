"""Reward-based training from scratch: the update's rows (packed = padded), the scratchpad's
grammar in the sampler, the scorer and the update, redrawing groups without contrast, the
learnability and focus curricula, and exact resumption with all of them on (and answers from their
family's alphabet, with entropy floors that read the saved pass rates)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rf_jax import train
from rf_jax.curriculum import LEARNABILITY_FLOOR, Curriculum
from rf_jax.data.tasks import TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.greedy import answer_text
from rf_jax.model import ModelConfig
from rf_jax.objectives.policy_gradient import check_rl_config
from rf_jax.rl_rollouts import draw_prompts, scratchpad_tokens, token_credit
from rf_jax.rl import action_floor_term, pg_loss, token_logprobs
from rf_jax.rl_rows import make_samples, packed_rows, padded_rows, scratchpad_flags
from rf_jax.sampling import sample
from rf_jax.train_state import abstract_model, init_params, mesh_rules
from rf_jax.vocab import phase1_vocab

from helpers import load_config, mesh_of, rl_trainer, logged

EOS, ANS, PAD = 2, 5, 0


def _tiny_model(vocab_size=16):
  cfg = ModelConfig(vocab_size=vocab_size, d_model=16, n_layers=1, n_heads=2, mlp_dim=32)
  mesh, rules = mesh_of((1, 1, 1)), mesh_rules(load_config())
  graphdef, _ = abstract_model(cfg, mesh, rules)
  return graphdef, init_params(cfg, mesh, rules, 0)


def _samples(think=0):
  rng = np.random.default_rng(1)
  prompts = [list(rng.integers(6, 16, n)) for n in (3, 5, 2, 4, 6, 3)]
  comp = rng.integers(6, 16, (6, 5)).astype(np.int32)
  comp[1, 2] = EOS
  comp[3, 0] = EOS
  comp[4, 1] = ANS  # a scratchpad closed early by the policy itself
  comp[5, 3] = ANS  # ... and one the sampler closed at index `think` = 3
  adv = rng.normal(size=(6, 5)).astype(np.float32)
  return make_samples(prompts, comp, adv, EOS, ANS, think)


@pytest.mark.parametrize("think", [0, 3])
def test_packed_rows_give_the_padded_rows_loss_and_gradient(think):
  graphdef, params = _tiny_model()
  samples = _samples(think)
  padded = padded_rows(samples, 6, 5, PAD)
  packed = packed_rows(samples, 16, PAD)
  assert packed["action_mask"].sum() == padded["action_mask"].sum()

  def loss(p, rows):
    rows = {k: jnp.asarray(v) for k, v in rows.items()}
    return pg_loss(p, graphdef, rows, allowed=16, clip_eps=0.2, kl_coef=0.0, eos_id=EOS,
                   entropy_coef=0.1)[0]

  a, ga = jax.value_and_grad(loss)(params, padded)
  b, gb = jax.value_and_grad(loss)(params, packed)
  np.testing.assert_allclose(float(a), float(b), rtol=1e-5)
  for x, y in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(ga)) > 1e-4


def test_scratchpad_flags_follow_the_samplers_rules():
  ids = np.array([7, 8, 9, ANS, 6, EOS])
  chosen, no_stop = scratchpad_flags(ids, ANS, think=3)
  assert list(chosen) == [1, 1, 1, 0, 1, 1]  # the <ans> at index 3 was forced
  assert list(no_stop) == [1, 1, 1, 1, 0, 0]
  chosen, no_stop = scratchpad_flags(np.array([7, ANS, 6, EOS]), ANS, think=3)
  assert chosen.all() and list(no_stop) == [1, 1, 0, 0]  # closed early: the policy's choice
  chosen, no_stop = scratchpad_flags(ids, ANS, think=0)
  assert chosen.all() and not no_stop.any()


def test_sampler_scratchpad_grammar_and_row_limits():
  graphdef, params = _tiny_model()
  rng = np.random.default_rng(0)
  prompts = jnp.asarray(rng.integers(6, 16, (32, 4)), jnp.int32)
  mask = jnp.ones((32, 4), jnp.int32)
  out = np.asarray(sample(params, prompts, mask, jax.random.key(0), graphdef=graphdef,
                          max_new=9, valid_vocab=16, eos_id=EOS, temperature=1.0, think=3,
                          ans_id=ANS))
  for row in out:
    first_ans = list(row).index(ANS)  # every row has its <ans> ...
    assert first_ans <= 3  # ... by index `think`
    assert EOS not in row[:first_ans]  # and could not stop before it
    assert ANS not in row[first_ans + 1:]  # nor write a second one, which no decoder reads
  limits = jnp.asarray(np.arange(32) % 5 + 1, jnp.int32)
  out = np.asarray(sample(params, prompts, mask, jax.random.key(0), limits, graphdef=graphdef,
                          max_new=8, valid_vocab=16, eos_id=EOS, temperature=1.0))
  for row, lim in zip(out, np.asarray(limits)):
    assert (row[lim:] == EOS).all()


def test_update_scores_actions_under_the_sampling_distribution():
  """Where the sampler banned <eos>, the update's log-probs are normalised without it."""
  graphdef, params = _tiny_model()
  rows = {k: jnp.asarray(v) for k, v in padded_rows(_samples(3), 6, 5, PAD).items()}
  with_rule, _ = token_logprobs(params, graphdef, rows, 16, EOS)
  without, _ = token_logprobs(params, graphdef, {**rows, "no_stop": 0 * rows["no_stop"]}, 16, EOS)
  banned = (np.asarray(rows["no_stop"]) > 0) & (np.asarray(rows["targets"]) != EOS)
  assert banned.sum() > 5
  assert (np.asarray(with_rule)[banned] > np.asarray(without)[banned]).all()
  free = np.asarray(rows["no_stop"]) == 0
  np.testing.assert_array_equal(np.asarray(with_rule)[free], np.asarray(without)[free])


def test_update_bans_a_second_ans_in_the_answer_as_the_sampler_does():
  graphdef, params = _tiny_model()
  rows = {k: jnp.asarray(v) for k, v in padded_rows(_samples(3), 6, 5, PAD).items()}
  rows["targets"] = jnp.where(rows["action_mask"] > 0, ANS, rows["targets"])  # <ans> everywhere
  banned, _ = token_logprobs(params, graphdef, rows, 16, EOS, ANS)
  free, _ = token_logprobs(params, graphdef, rows, 16, EOS)
  answered = (np.asarray(rows["no_stop"]) == 0) & (np.asarray(rows["action_mask"]) > 0)
  assert answered.sum() > 3
  assert (np.asarray(banned)[answered] < -1e6).all()  # impossible after the first <ans>
  np.testing.assert_array_equal(np.asarray(banned)[~answered], np.asarray(free)[~answered])


def test_scratchpad_answer_and_credit():
  v = phase1_vocab()
  ids = v.encode("12") + [v.ans_id] + v.encode("7") + [v.eos_id]
  assert answer_text(v, ids, False, scratchpad=4) == "7"
  assert answer_text(v, v.encode("7") + [v.eos_id], False, scratchpad=4) == ""
  assert scratchpad_tokens(v, ids, 4) == 2 and scratchpad_tokens(v, ids, 0) == 0
  credit = token_credit(v, ids, [1.0, 1.0], False, scratchpad=4)
  np.testing.assert_allclose(credit, [1.0, 1.0, 1.0, 1.0, 1.0])  # answer 1.0, stop +1.0 at eos
  assert credit[-1] == 1.0 and len(credit) == 5


def test_learnability_weights_and_draws():
  cur = Curriculum(("a", "b"), 1, 3, kind="fixed")
  np.testing.assert_allclose(cur.learnability("a", 0), [0.25 + LEARNABILITY_FLOOR] * 3)
  exact = np.array([[10, 5, 0], [0, 0, 0]])
  count = np.array([[10, 10, 10], [0, 0, 0]])
  for _ in range(30):
    cur.update(0, exact, count)
  w = cur.learnability("a", 0)
  assert w[1] > 0.2 and w[0] < 0.06 and w[2] < 0.06  # always / never passed teach little
  rng = np.random.default_rng(0)
  draws = [cur.draw_learnable(rng, "a", 0) for _ in range(2000)]
  assert np.mean(np.array(draws) == 2) > 0.6
  restored = Curriculum(("a", "b"), 1, 3, kind="fixed")
  restored.load_state(json.loads(json.dumps(cur.state())))
  np.testing.assert_allclose(restored.learnability("a", 0), w)
  mix = TaskMixture.build(("parity", "dyck"), None, (1, 3))
  cur = Curriculum(("parity", "dyck"), 1, 3, kind="fixed")
  cur.update(0, np.array([[0, 0, 0], [5, 5, 5]]), np.array([[10, 10, 10], [10, 10, 10]]))
  picked = [p.task for p in draw_prompts(mix, cur, 0, 1, 400, learnable=True)]
  assert np.mean(picked) > 0.75  # dyck, at pass rate 0.5, is drawn far more than parity at 0
  cur.update(0, np.array([[10, 10, 10], [0, 0, 0]]), np.array([[10, 10, 10], [10, 10, 10]]))
  rates = [cur.pass_rate[t][2] for t in ("parity", "dyck")]
  picked = [p.task for p in draw_prompts(mix, cur, 0, 1, 4000, solved_weight=0.25)]
  want = (0.25 + 0.75 * (1 - rates[1])) / sum(0.25 + 0.75 * (1 - r) for r in rates)
  assert abs(np.mean(picked) - want) < 0.03 and rates[0] > rates[1]  # the failing one gains
  uniform = [p.task for p in draw_prompts(mix, cur, 0, 1, 4000)]
  assert abs(np.mean(uniform) - 0.5) < 0.03
  # Read at the first level, a family that learned it and fails its current (third) level
  # yields to one that has not learned its first.
  for _ in range(30):
    cur.update(0, np.array([[10, 0, 0], [0, 10, 10]]), np.array([[10, 10, 10], [10, 10, 10]]))
  for level, favoured in (("current", 0), ("first", 1)):
    picked = [p.task for p in draw_prompts(mix, cur, 0, 1, 2000, solved_weight=0.1,
                                           solved_level=level)]
    assert np.mean(np.array(picked) == favoured) > 0.75, level


def _explore_config(steps):
  c = load_config()
  c.mesh.shape = (-1, 1, 1)
  c.objective.kind = "rl"
  c.data.update(tasks=("parity", "dyck", "copy"), levels=(1, 2))
  c.curriculum.update(kind="adaptive", min_examples=8, focus=1, focus_window=2)
  c.rl.update(prompts=8, group_size=4, credit="token", scratchpad=3, scratchpad_cost=0.01,
              redraw=2, learnability=True, entropy_target=0.5, entropy_coef=0.5,
              answer_alphabet=True, entropy_share=0.8, replay=4, replay_samples=4)
  c.train.update(steps=steps, warmup_steps=1, end_lr_fraction=1.0, log_every=1, eval_every=0,
                 eval_levels=(1,), eval_examples=8, checkpoint_every=3)
  return c


@pytest.mark.slow
def test_exploring_run_with_scratchpad_resumes_exactly_and_reloads(tmp_path):
  train.run(_explore_config(6), str(tmp_path / "straight"))
  train.run(_explore_config(3), str(tmp_path / "resumed"))
  train.run(_explore_config(6), str(tmp_path / "resumed"))
  for key in ("train/reward", "train/pg_loss", "train/grad_norm", "train/rollout_rounds",
              "train/zero_variance_drawn", "train/update_tokens", "train/outside_alphabet",
              "train/replay_kept", "train/replay_samples",
              "curriculum/focus/copy", "curriculum/focus/dyck"):
    a, b = logged(tmp_path / "straight", key), logged(tmp_path / "resumed", key)
    assert sorted(a) == list(range(1, 7)) and a == b, key
  assert set(logged(tmp_path / "straight", "curriculum/focus/copy").values()) == {0.0, 1.0}
  drawn = logged(tmp_path / "straight", "train/zero_variance_drawn")
  kept = logged(tmp_path / "straight", "train/zero_variance_groups")
  assert all(kept[s] <= drawn[s] for s in kept)
  assert any(k.startswith("train/solve_all/") for k in
             json.loads((tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()[0]))
  import rf_jax
  model = rf_jax.load(str(tmp_path / "straight"))
  raw = model.generate(["copy:ab", "dyck:(("], raw=True)
  v = model.vocab
  assert all(v.tokens[v.ans_id] in r for r in raw)  # every generation wrote its scratchpad
  answers = model.generate(["copy:ab", "dyck:(("])
  assert all(v.tokens[v.ans_id] not in a for a in answers)
  assert model.score_task("copy", 1, n=4)["n"] == 4


def test_flop_budget_stops_a_run_at_its_counted_flops(tmp_path):
  from rf_jax import objectives
  from rf_jax.train_state import model_config
  from rf_jax.vocab import phase1_vocab
  c = load_config()
  c.train.update(steps=50, log_every=1, eval_every=0, eval_levels=(), checkpoint_every=0)
  per_step = objectives.planned_cost(c, model_config(c, phase1_vocab()))[1]
  c.train.flop_budget = 2.5 * per_step
  from helpers import run_on_one_device
  run_on_one_device(c, tmp_path)
  assert logged(tmp_path, "perf/train_flops") == {1: per_step, 2: 2 * per_step,
                                                   3: 3 * per_step}
  run_on_one_device(c, tmp_path)  # the budget counts the whole run: a rerun trains nothing
  assert max(logged(tmp_path, "perf/train_flops")) == 3


def test_entropy_target_acts_only_on_actions_below_it():
  from rf_jax.rl import entropy_term
  H = jnp.asarray([[0.05, 1.0, 2.0, 0.0]])
  mask = jnp.asarray([[1.0, 1.0, 1.0, 0.0]])
  grad = jax.grad(lambda h: entropy_term(h, mask, 1.0, target=0.5))(H)
  np.testing.assert_allclose(np.asarray(grad), [[-1 / 3, 0, 0, 0]])  # only the collapsed one
  assert float(entropy_term(H, mask, 1.0, 0.5)) == pytest.approx(0.45 / 3)
  bonus = jax.grad(lambda h: entropy_term(h, mask, 1.0, target=0.0))(H)
  np.testing.assert_allclose(np.asarray(bonus), [[-1 / 3, -1 / 3, -1 / 3, 0]])


@pytest.mark.parametrize("scratchpad", [0, 3])
def test_ans_is_an_action_only_where_something_reads_it(scratchpad):
  """Without a trace or a scratchpad the decoder drops <ans>, so a policy that could write it
  would pad a truncated answer with it unseen: it is not in the action space then."""
  config = load_config()
  config.rl.update(prompts=32, group_size=8, scratchpad=scratchpad, temperature=1.0)
  trainer, state = rl_trainer(config, ("copy", "sort"), (1, 2), lr=1e-3, steps=2)
  vocab = trainer.vocab
  _, _, out, _, _ = trainer.rollout(state["params"], 0)
  assert out.size > 2000
  assert ((out == vocab.ans_id).any(axis=1).all() if scratchpad
          else not (out == vocab.ans_id).any())


def test_the_action_floor_lifts_a_starved_choice_as_hard_as_a_rare_one():
  """Entropy can be held by spreading over choices that do not matter while <eos> starves;
  the floor keeps each allowed choice at share / #allowed or more."""
  mask = jnp.ones((1, 2))
  logits = jnp.asarray([[[2.0, 2.0, 2.0, -14.0, -1e9], [0.0, 0.0, 0.0, 0.0, -1e9]]])
  term = lambda z: action_floor_term(z, mask, 0.2)
  # position 0: choice 3 starved (p ~ 4e-8); position 1: uniform over the 4 allowed
  assert float(term(logits)) > 0
  assert float(action_floor_term(logits[:, 1:], mask[:, 1:], 0.2)) == 0.0
  grad = np.asarray(jax.grad(term)(logits))
  assert grad[0, 0, 3] < 0 and (grad[0, 0, :3] > 0).all()  # descent raises the starved one
  assert grad[0, 0, 4] == 0 and (grad[0, 1] == 0).all()  # banned ids and met floors: nothing
  rarer = logits.at[0, 0, 3].set(-20.0)
  np.testing.assert_allclose(jax.grad(term)(rarer)[0, 0, 3], grad[0, 0, 3], rtol=1e-4)


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_an_action_floor_outside_0_1_is_one_line_error(share):
  rl = load_config().rl
  rl.action_floor = share
  mix = TaskMixture.build(("parity",), None, (1, 1))
  with pytest.raises(ConfigError, match=r"rl.action_floor is a share .* in \[0, 1\)"):
    check_rl_config(rl, mix, (1, 1), phase1_vocab(), mesh_of((1, 1, 1)), 0, False)
