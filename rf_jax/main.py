"""python -m rf_jax.main --config=configs/phase1.py[:preset] [--workdir=DIR] [--config.x=y]"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from rf_jax.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (with :preset).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder; default workdirs/<config.name>.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax and grain are chatty at INFO
  config = _CONFIG.value
  if config is None:
    sys.exit("error: pass --config=configs/phase1.py (or another config file)")
  from rf_jax import train  # after flag parsing: keeps `--help` fast
  workdir = _WORKDIR.value or f"workdirs/{config.name}"
  try:
    train.run(config, workdir)
  except ConfigError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
