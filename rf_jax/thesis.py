"""python -m rf_jax.thesis: reasoning-first against text-first at matched training FLOPs.

The experiment lives in rf_jax/experiments/thesis.py; this entry point keeps the command.
"""
import sys

from rf_jax.experiments.thesis import main

if __name__ == "__main__":
  sys.exit(main())
