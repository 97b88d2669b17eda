"""Shared test fixtures: tiny configs and meshes over subsets of the 8 fake devices."""
import jax

from rf_jax.sharding import make_mesh

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name="phase1", preset="tiny"):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", os.path.join(ROOT, "configs", f"{name}.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(preset)


def mesh_of(shape):
  n = 1
  for s in shape:
    n *= s
  return make_mesh(shape, jax.devices()[:n])
