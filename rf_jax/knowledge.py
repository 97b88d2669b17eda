"""python -m rf_jax.knowledge: retriever, memory banks, memory reasoner, full-context model, table (rf_jax.experiments.knowledge)."""
import sys

from rf_jax.experiments.knowledge import main

if __name__ == "__main__":
  sys.exit(main())
