"""The configs shipped with rf_jax (installed as the package rf_jax.configs)."""
