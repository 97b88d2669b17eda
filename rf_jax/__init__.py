"""rf_jax: a JAX/Flax trainer for reasoning-first language models."""


def load(path: str, step: int | None = None, devices=None, scan_layers: bool | None = None):
  """Reloads a checkpoint for probing; see rf_jax.api."""
  from rf_jax.api import load as _load  # lazy: `import rf_jax` stays cheap
  return _load(path, step, devices, scan_layers)
