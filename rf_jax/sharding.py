"""Mesh from config, logical-axis rules, and the shardings of state and batches."""
from __future__ import annotations

import math
from typing import Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from rf_jax.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # the batch dimension is split over both

# Default logical → mesh rules; configs may override them.
DEFAULT_RULES = (
    ("batch", BATCH_AXES),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
    ("kv", None),
    ("layers", None),  # the stacked blocks of model.scan_layers: every device holds all layers
)


def resolve_mesh_shape(shape: Sequence[int], n_devices: int) -> tuple[int, ...]:
  """Fills one -1 entry with the devices left over; checks the product."""
  shape = tuple(int(s) for s in shape)
  if len(shape) != len(MESH_AXES):
    raise ConfigError(f"mesh.shape needs {len(MESH_AXES)} entries {MESH_AXES}, got {shape}")
  if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
    raise ConfigError(f"mesh.shape {shape}: entries must be positive, with at most one -1")
  if -1 in shape:
    rest = math.prod(s for s in shape if s != -1)
    if n_devices % rest:
      raise ConfigError(f"mesh.shape {shape} does not divide the {n_devices} devices; "
                       f"the fixed entries multiply to {rest}")
    shape = tuple(n_devices // rest if s == -1 else s for s in shape)
  if math.prod(shape) != n_devices:
    raise ConfigError(f"mesh.shape {shape} needs {math.prod(shape)} devices but "
                     f"{n_devices} are available; set --config.mesh.shape so the "
                     f"product is {n_devices} (use -1 for 'the rest')")
  return shape


def make_mesh(shape: Sequence[int], devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  shape = resolve_mesh_shape(shape, len(devices))
  # Auto axes: NNX embedding gathers on sharded tables fail under Explicit axes.
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def data_parallel_size(mesh: Mesh) -> int:
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def check_batch(batch_size: int, mesh: Mesh) -> None:
  dp = data_parallel_size(mesh)
  if batch_size % dp:
    raise ConfigError(f"train.batch_size={batch_size} is not divisible by the data-parallel "
                     f"size {dp} (mesh data x fsdp); use a multiple of {dp}")
  if batch_size % jax.process_count():
    raise ConfigError(f"train.batch_size={batch_size} is not divisible by the "
                     f"{jax.process_count()} processes")


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def make_global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Host arrays (this process's rows) → global arrays sharded over the batch axes."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in local_batch.items()}
