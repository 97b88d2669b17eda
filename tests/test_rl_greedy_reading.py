"""What the curriculum and the entropy floors read with rl.pass_rate = greedy: each drawn
prompt's reference answer rides in the update rows, untrained, and its teacher-forced argmax
says whether greedy decoding would reproduce it (the same event, with no decoding)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rf_jax.data.tasks import TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.model import ModelConfig
from rf_jax.objectives.policy_gradient import check_rl_config
from rf_jax.rl import pg_loss
from rf_jax.rl_rows import completion_length, make_samples, packed_rows, reference_sample
from rf_jax.sampling import sample
from rf_jax.train_state import abstract_model, init_params, mesh_rules
from rf_jax.vocab import phase1_vocab

from helpers import load_config, mesh_of, rl_trainer

EOS, PAD, V = 2, 0, 16


def test_a_reference_reads_exact_where_greedy_decoding_writes_it():
  cfg = ModelConfig(vocab_size=V, d_model=16, n_layers=1, n_heads=2, mlp_dim=32)
  mesh, rules = mesh_of((1, 1, 1)), mesh_rules(load_config())
  graphdef, _ = abstract_model(cfg, mesh, rules)
  params = init_params(cfg, mesh, rules, 0)
  rng = np.random.default_rng(0)
  prompts = [list(rng.integers(6, 16, n)) for n in (3, 5, 4, 4)]
  greedy = []
  for p in prompts:
    out = np.asarray(sample(params, jnp.asarray([p], jnp.int32), jnp.ones((1, len(p)), jnp.int32),
                            jax.random.key(0), graphdef=graphdef, max_new=5, valid_vocab=V,
                            eos_id=EOS, temperature=0.0))[0]
    greedy.append([int(t) for t in out[:completion_length(out, EOS)]])
  wrong = list(greedy[1])
  wrong[-1] = 6 + (wrong[-1] - 5) % 10  # one token the greedy policy did not write
  refs = [greedy[0], wrong, greedy[2], greedy[3][:2]]  # a prefix of a greedy answer is exact
  comp = rng.integers(6, 16, (4, 4)).astype(np.int32)
  comp[:, 3] = EOS
  samples = make_samples(prompts, comp, rng.normal(size=(4, 4)).astype(np.float32), EOS)
  loss = lambda rows, n: pg_loss(params, graphdef, {k: jnp.asarray(v) for k, v in rows.items()},
                                 allowed=V, clip_eps=0.2, kl_coef=0.0, eos_id=EOS,
                                 references=n)
  with_refs = packed_rows(samples + [reference_sample(p, r, i) for i, (p, r) in
                                     enumerate(zip(prompts, refs))], 24, PAD)
  got, aux = loss(with_refs, 4)
  counts = np.asarray(aux["reference_wrong"])
  assert counts.tolist() == [0, 0, 1, 0, 0]  # [0]: positions outside every reference
  alone, _ = loss(packed_rows(samples, 24, PAD), 0)
  np.testing.assert_allclose(float(got), float(alone), rtol=1e-5)  # references are not trained


def test_the_curriculum_counts_one_greedy_reading_per_drawn_prompt():
  config = load_config()
  config.rl.update(prompts=8, group_size=4, pass_rate="greedy", redraw=1)
  trainer, state = rl_trainer(config, ("copy", "parity"))
  state, m = trainer(state, 0)
  assert m["count"].sum() == 8 and 0 <= m["exact"].sum() <= 8
  assert 0.0 <= m["greedy_exact"] <= 1.0 and np.isfinite(m["pg_loss"])
  config.rl.pass_rate = "samples"
  trainer, state = rl_trainer(config, ("copy", "parity"))
  state, m = trainer(state, 0)
  assert m["count"].sum() == 8 * 4 and "greedy_exact" not in m


def test_greedy_pass_rate_with_a_scratchpad_is_one_line_error():
  rl = load_config().rl
  rl.update(pass_rate="greedy", scratchpad=4)
  mix = TaskMixture.build(("parity",), None, (1, 1))
  with pytest.raises(ConfigError, match="rl.pass_rate=samples"):
    check_rl_config(rl, mix, (1, 1), phase1_vocab(), mesh_of((1, 1, 1)), 0, False)
  rl.update(pass_rate="argmax", scratchpad=0)
  with pytest.raises(ConfigError, match="rl.pass_rate must be"):
    check_rl_config(rl, mix, (1, 1), phase1_vocab(), mesh_of((1, 1, 1)), 0, False)
