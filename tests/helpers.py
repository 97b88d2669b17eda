"""Shared test fixtures: tiny configs and meshes over subsets of the 8 fake devices."""
import os

import jax

from rf_jax import config as config_lib
from rf_jax.sharding import make_mesh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout, for CLI tests


def load_config(name="phase1", preset="tiny"):
  return config_lib.load(f"{name}.py:{preset}")


def mesh_of(shape):
  n = 1
  for s in shape:
    n *= s
  return make_mesh(shape, jax.devices()[:n])
