"""Joining a multi-process JAX run: one place for the trainer and every other entry point."""
from __future__ import annotations

import os

from rf_jax.errors import ConfigError


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Joins a multi-process run when there is one; a single process needs nothing.

  Explicit coordinator flags win; otherwise a TPU VM slice (several worker hostnames) or a
  SLURM job with several tasks is joined from its environment.
  """
  import jax
  if coordinator:
    if num_processes is None or process_id is None:
      raise ConfigError("--coordinator_address needs --num_processes and --process_id too")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)
  elif "," in os.environ.get("TPU_WORKER_HOSTNAMES", "") or \
      int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    jax.distributed.initialize()  # peers from the TPU VM metadata or the SLURM environment
