"""Answers drawn from their family's alphabet (rl.answer_alphabet): what each family may write,
the sampler keeping answers inside it (a scratchpad stays free), the update scoring actions
under that restricted distribution while teaching the unrestricted model to stay inside, and
the trainer wiring it end to end."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rf_jax import tasks
from rf_jax.curriculum import Curriculum
from rf_jax.data.tasks import TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.model import ModelConfig
from rf_jax.objectives.policy_gradient import check_rl_config
from rf_jax.rl_rollouts import Prompt, alphabet_table
from rf_jax.rl import action_logits, pg_loss, token_logprobs
from rf_jax.rl_rows import make_samples, padded_rows
from rf_jax.sampling import sample
from rf_jax.train_state import abstract_model, init_params, mesh_rules
from rf_jax.vocab import phase1_vocab, text_vocab, train_sentencepiece

from helpers import load_config, mesh_of, rl_trainer

EOS, ANS, PAD, V = 2, 5, 0, 16
SMALL, LARGE = [6, 7], list(range(8, 16))  # two families' alphabets in a 16-id toy vocabulary


def _tiny_model():
  cfg = ModelConfig(vocab_size=V, d_model=16, n_layers=1, n_heads=2, mlp_dim=32)
  mesh, rules = mesh_of((1, 1, 1)), mesh_rules(load_config())
  graphdef, _ = abstract_model(cfg, mesh, rules)
  return graphdef, init_params(cfg, mesh, rules, 0)


def _table():
  table = np.zeros((3, V), bool)
  table[0] = True
  table[1, SMALL + [EOS]] = True
  table[2, LARGE + [EOS]] = True
  return table


def test_each_family_answers_from_its_own_characters():
  assert tasks.get("copy").answer_alphabet() == "abcdefghijklmnopqrstuvwxyz"
  assert tasks.get("parity").answer_alphabet() == "01"
  assert tasks.get("add").answer_alphabet() == "0123456789"
  vocab = phase1_vocab()
  table = alphabet_table([tasks.get("parity"), tasks.get("dyck")], vocab, 128)
  assert table.shape == (3, 128) and table[0].all()
  assert set(np.flatnonzero(table[1])) == set(vocab.encode("01")) | {vocab.eos_id}
  assert set(np.flatnonzero(table[2])) == set(vocab.encode(")>]}")) | {vocab.eos_id}
  for task in tasks.names():  # every answer of every level is inside its family's alphabet
    t = tasks.get(task)
    for level in range(1, t.max_level + 1):
      for i in range(300, 340):  # examples the default alphabet did not read
        assert set(tasks.make_example(t, 0, i, level).answer) <= set(t.answer_alphabet()), task


@pytest.mark.parametrize("think", [0, 3])
def test_sampler_keeps_each_answer_inside_its_rows_alphabet(think):
  graphdef, params = _tiny_model()
  rng = np.random.default_rng(0)
  prompts = jnp.asarray(rng.integers(6, 16, (64, 4)), jnp.int32)
  legal = jnp.asarray(_table()[np.arange(64) % 2 + 1])
  out = np.asarray(sample(params, prompts, jnp.ones((64, 4), jnp.int32), jax.random.key(0),
                          None, legal, graphdef=graphdef, max_new=9, valid_vocab=V, eos_id=EOS,
                          temperature=1.0, think=think, ans_id=ANS))
  outside_pad = 0
  for r, row in enumerate(out):
    row = list(row)
    start = row.index(ANS) + 1 if think else 0
    end = row.index(EOS) if EOS in row else len(row)
    allowed = SMALL if r % 2 == 0 else LARGE
    assert set(row[start:end]) <= set(allowed), (r, row)
    outside_pad += len(set(row[:start]) - set(allowed) - {ANS})
  assert (outside_pad > 0) == bool(think)  # a scratchpad is free to write anything


def test_update_scores_answers_under_their_alphabet_and_pulls_mass_inside():
  graphdef, params = _tiny_model()
  rng = np.random.default_rng(1)
  prompts = [list(rng.integers(6, 16, n)) for n in (3, 5, 2, 4)]
  comp = np.array([[6, 7, EOS, 6], [7, 7, 6, EOS], [9, 12, EOS, 8], [15, EOS, 8, 8]], np.int32)
  adv = np.zeros((4, 4), np.float32)
  samples = (make_samples(prompts[:2], comp[:2], adv[:2], EOS, family=1)
             + make_samples(prompts[2:], comp[2:], adv[2:], EOS, family=2))
  rows = {k: jnp.asarray(v) for k, v in padded_rows(samples, 6, 4, PAD).items()}
  table = _table()
  logits, outside = action_logits(params, graphdef, rows, V, EOS, legal=table)
  free_logits, _ = action_logits(params, graphdef, rows, V, EOS)
  logp, _ = token_logprobs(params, graphdef, rows, V, EOS, legal=table)
  free, _ = token_logprobs(params, graphdef, rows, V, EOS)
  fam = np.asarray(rows["family"])
  assert (fam[np.asarray(rows["action_mask"]) > 0] > 0).all() and (fam > 0).sum() == 12
  for b, t in zip(*np.nonzero(fam)):
    ok = table[fam[b, t]]
    z = np.asarray(free_logits[b, t], np.float64)
    inside = np.log(np.exp(z[ok]).sum() / np.exp(z).sum())
    np.testing.assert_allclose(float(outside[b, t]), -inside, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(logp[b, t]), float(free[b, t]) - inside, rtol=1e-5,
                               atol=1e-6)
  rest = fam == 0
  np.testing.assert_array_equal(np.asarray(logp)[rest], np.asarray(free)[rest])

  # With no advantage at all, the alphabet term alone moves mass inside the alphabets.
  def loss(p):
    return pg_loss(p, graphdef, rows, allowed=V, clip_eps=0.2, kl_coef=0.0, eos_id=EOS,
                   legal=table, alphabet_coef=1.0)
  (before, aux), grad = jax.value_and_grad(loss, has_aux=True)(params)
  stepped = jax.tree.map(lambda p, g: p - 0.5 * g, params, grad)
  after, aux_after = loss(stepped)
  assert float(after) < float(before)
  assert float(aux_after["outside_alphabet"]) < float(aux["outside_alphabet"])
  no_term = jax.grad(lambda p: pg_loss(p, graphdef, rows, allowed=V, clip_eps=0.2,
                                       kl_coef=0.0, eos_id=EOS, legal=table)[0])(params)
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(no_term))


def test_trainer_samples_inside_each_familys_alphabet():
  config = load_config()
  rl = config.rl
  rl.update(prompts=8, group_size=4, answer_alphabet=True, credit="token")
  trainer, state = rl_trainer(config, ("copy", "parity"))
  vocab = trainer.vocab
  batch, _, _ = trainer.collect(state["params"], 0)
  seen = {0: set(), 1: set()}
  for g in batch:
    for ids in g.completions:
      ids = list(ids)
      seen[g.prompt.task] |= set(ids[:ids.index(vocab.eos_id)] if vocab.eos_id in ids else ids)
  assert seen[0] and seen[0] <= set(vocab.encode("abcdefghijklmnopqrstuvwxyz"))
  assert seen[1] and seen[1] <= set(vocab.encode("01"))
  state, m = trainer(state, 1)
  assert 0 < m["outside_alphabet"] < 1 and np.isfinite(m["pg_loss"])


def test_alphabet_with_traces_or_sentencepiece_is_one_line_error():
  rl = load_config().rl
  rl.update(answer_alphabet=True)
  mix = TaskMixture.build(("parity",), None, (1, 1))
  with pytest.raises(ConfigError, match="data.use_trace=False or rl.answer_alphabet=False") as e:
    check_rl_config(rl, mix, (1, 1), phase1_vocab(), mesh_of((1, 1, 1)), 0, True)
  assert "\n" not in str(e.value)
  pieces = train_sentencepiece([f"the quick brown fox {i} times" for i in range(200)], 320)
  with pytest.raises(ConfigError, match="not sentencepiece: set rl.answer_alphabet=False") as e:
    check_rl_config(rl, mix, (1, 1), text_vocab("sentencepiece", sp_model=pieces),
                    mesh_of((1, 1, 1)), 0, False)
  assert "\n" not in str(e.value)


def test_entropy_floor_scales_with_the_alphabet_and_falls_as_the_family_is_solved():
  config = load_config()
  rl = config.rl
  rl.update(prompts=8, group_size=4, answer_alphabet=True, entropy_target=0.5,
            entropy_share=0.8)
  names = ("copy", "parity")
  curriculum = Curriculum(names, 1, 2)
  trainer, _ = rl_trainer(config, names, (1, 2), curriculum=curriculum)
  curriculum.pass_rate.update(copy=[0.0, 0.25], parity=[0.0, 0.9])
  copy1, copy2, par1, par2 = (
      trainer.entropy_floor(Prompt(t, lv, None)) for t, lv in ((0, 1), (0, 2), (1, 1), (1, 2)))
  # 26 letters and <eos>; 0, 1 and <eos>; the 0.5 floor under both.
  assert copy1 == pytest.approx(0.8 * np.log(27)) and copy2 == pytest.approx(0.6 * np.log(27))
  assert par1 == pytest.approx(0.8 * np.log(3)) and par2 == 0.5

  graphdef, params = _tiny_model()
  rng = np.random.default_rng(2)
  prompts = [list(rng.integers(6, 16, 3)) for _ in range(2)]
  comp = np.array([[6, 7, EOS], [9, 12, EOS]], np.int32)
  zero = np.zeros((1, 3), np.float32)
  samples = (make_samples(prompts[:1], comp[:1], zero, EOS, family=1, floor=3.0)
             + make_samples(prompts[1:], comp[1:], zero, EOS, family=2, floor=0.1))
  rows = {k: jnp.asarray(v) for k, v in padded_rows(samples, 3, 3, PAD).items()}

  def loss(floors):
    return float(pg_loss(params, graphdef, rows, allowed=V, clip_eps=0.2, kl_coef=0.0,
                         eos_id=EOS, legal=_table(), entropy_coef=1.0, entropy_target=0.5,
                         floors=floors)[0])
  logits, _ = action_logits(params, graphdef, rows, V, EOS, legal=_table())
  p = jax.nn.softmax(logits, axis=-1)
  h = np.asarray(-(p * jnp.log(jnp.maximum(p, 1e-30))).sum(-1))
  mask = np.asarray(rows["action_mask"]) > 0
  floor = np.asarray(rows["entropy_floor"])
  assert sorted(set(floor[mask].tolist())) == pytest.approx([0.1, 3.0])
  expected = np.maximum(floor - h, 0)[mask].sum() / mask.sum()
  assert expected > 0.1 and (np.maximum(0.1 - h, 0)[floor == np.float32(0.1)] == 0).all()
  np.testing.assert_allclose(loss(True), expected, rtol=1e-4)
  np.testing.assert_allclose(loss(False), np.maximum(0.5 - h, 0)[mask].sum() / mask.sum(),
                             rtol=1e-4)
