"""Shared test fixtures: tiny configs and meshes over subsets of the 8 fake devices."""
import json
import os

import jax

from rf_jax import config as config_lib
from rf_jax import sharding, train
from rf_jax.curriculum import Curriculum
from rf_jax.data.tasks import TaskMixture
from rf_jax.objectives.policy_gradient import RLTrainer
from rf_jax.sharding import make_mesh
from rf_jax.train_state import (abstract_model, init_state, make_optimizer, make_schedule,
                                mesh_rules, model_config, state_shardings)
from rf_jax.vocab import phase1_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout, for CLI tests


def load_config(name="phase1", preset="tiny"):
  return config_lib.load(f"{name}.py:{preset}")


def mesh_of(shape):
  n = 1
  for s in shape:
    n *= s
  return make_mesh(shape, jax.devices()[:n])


def run_on_one_device(config, workdir):
  """train.run on the first fake device only (a tiny batch would give each of 8 one row)."""
  config.mesh.shape = (1, 1, 1)
  real = sharding.make_mesh
  train.make_mesh = lambda shape: real(shape, jax.devices()[:1])
  try:
    return train.run(config, str(workdir))
  finally:
    train.make_mesh = real


def rl_trainer(config, names, levels=(1, 1), lr=1e-2, steps=3, shape=(1, 1, 1),
               curriculum=None):
  """(an RLTrainer of `config`'s model and rl fields over the families `names`, a fresh train
  state) on a mesh of `shape`, with the phase-1 vocabulary and a cosine schedule of `steps`."""
  vocab = phase1_vocab()
  mesh, rules = mesh_of(shape), mesh_rules(config)
  mcfg = model_config(config, vocab)
  tx = make_optimizer(make_schedule(lr, 1, steps), 0.1, 0.9, 0.98, 1.0)
  graphdef, abs_params = abstract_model(mcfg, mesh, rules)
  state = init_state(mcfg, tx, mesh, rules, seed=0)
  curriculum = curriculum or Curriculum(names, *levels)
  trainer = RLTrainer(config.rl, TaskMixture.build(names, None, levels), curriculum, vocab,
                      graphdef, mcfg, mesh, tx, state_shardings(abs_params, tx, mesh), 0, False, 4)
  return trainer, state


def doubling_task_source(name: str) -> str:
  """The source of a user task file: repeat each digit twice ('dbl:307' -> '330077').
  Registries are global, so each test that writes one gives it its own name."""
  cls = name.title().replace("_", "")
  return f'''
from rf_jax.tasks import Example, Task, register


@register
class {cls}(Task):
  name = "{name}"
  max_level = 3

  def generate(self, rng, level):
    digits = "".join(str(d) for d in rng.integers(0, 10, size=level + 1))
    return Example(prompt="dbl:" + digits, answer="".join(d + d for d in digits))
'''


def logged(workdir, key: str) -> dict:
  """{step: value} of `key` in a run's metrics.jsonl (steps that logged it)."""
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return {r["step"]: r[key] for r in rows if key in r}
