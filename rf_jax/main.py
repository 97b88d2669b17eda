"""python -m rf_jax.main --config=configs/phase1.py[:preset] [--workdir=DIR] [--config.x=y]

Several processes (multi-host): on Cloud TPU VMs and under SLURM JAX finds its peers by
itself; elsewhere pass --coordinator_address=HOST:PORT --num_processes=N --process_id=I.
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from rf_jax.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (with :preset).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder; default workdirs/<config.name>.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "HOST:PORT of process 0, for multi-process runs off TPU/SLURM.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0..N-1.")


def init_distributed() -> None:
  """Joins a multi-process run when there is one; a single process needs nothing."""
  import jax
  if _COORDINATOR.value:
    if _NUM_PROCESSES.value is None or _PROCESS_ID.value is None:
      raise ConfigError("--coordinator_address needs --num_processes and --process_id too")
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  elif "," in os.environ.get("TPU_WORKER_HOSTNAMES", "") or \
      int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    jax.distributed.initialize()  # peers from the TPU VM metadata or the SLURM environment


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and grain are chatty at INFO
  config = _CONFIG.value
  if config is None:
    sys.exit("error: pass --config=configs/phase1.py (or another config file)")
  try:
    init_distributed()
    from rf_jax import train  # after flag parsing: keeps `--help` fast
    train.run(config, _WORKDIR.value or f"workdirs/{config.name}")
  except ConfigError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
