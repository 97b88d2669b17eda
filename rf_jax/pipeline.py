"""python -m rf_jax.pipeline: phases 1 -> 2 -> 3 and the text-first baseline (rf_jax.experiments.pipeline)."""
import sys

from rf_jax.experiments.pipeline import main

if __name__ == "__main__":
  sys.exit(main())
