"""Shared test fixtures: tiny configs and meshes over subsets of the 8 fake devices."""
import os

import jax

from rf_jax import config as config_lib
from rf_jax import sharding, train
from rf_jax.sharding import make_mesh

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
