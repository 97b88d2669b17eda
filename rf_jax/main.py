"""python -m rf_jax.main --config=configs/phase1.py[:preset] [--workdir=DIR] [--config.x=y]

`--config` may name a file of your own, or one of the configs shipped with rf_jax from any
directory (`configs/phase1.py`, `phase1.py`, `phase1`).

Several processes (multi-host): on Cloud TPU VMs and under SLURM JAX finds its peers by
itself; elsewhere pass --coordinator_address=HOST:PORT --num_processes=N --process_id=I.
"""
import sys
import warnings

from absl import app, flags, logging
from ml_collections import config_flags

from rf_jax import config as config_lib
from rf_jax.distributed import PEER_TIMEOUT_S, initialize, watch_peers
from rf_jax.errors import ConfigError
from rf_jax import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (with :preset).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder; default workdirs/<config.name>.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "HOST:PORT of process 0, for multi-process runs off TPU/SLURM.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0..N-1.")
_PEER_TIMEOUT = flags.DEFINE_float(
    "peer_timeout_s", PEER_TIMEOUT_S, "Multi-process runs: a process whose peer is silent this "
    "long exits with an error naming it, instead of waiting in a collective (0: never).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and grain are chatty at INFO
  config = _CONFIG.value
  if config is None:
    sys.exit("error: pass --config=configs/phase1.py (or another config file)")
  try:
    initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _PEER_TIMEOUT.value)
    watch = watch_peers(_PEER_TIMEOUT.value)
    train.run(config, _WORKDIR.value or f"workdirs/{config.name}")
    if watch is not None:
      watch.stop()
  except ConfigError as e:
    # A save abandoned mid-write (a full disk) leaves coroutines that Python reports at exit,
    # which would print after the one line that says what to change.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited")
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main, argv=config_lib.resolve_flag(sys.argv))
