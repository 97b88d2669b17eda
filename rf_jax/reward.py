"""python -m rf_jax.reward: reasoning from scratch by reward against next-token prediction
at equal training FLOPs.

The experiment lives in rf_jax/experiments/reward.py; this entry point keeps the command short.
"""
import sys

from rf_jax.experiments.reward import main

if __name__ == "__main__":
  sys.exit(main())
