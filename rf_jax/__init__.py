"""rf_jax: a JAX/Flax trainer for reasoning-first language models."""


def _fresh_gcs_listings() -> None:
  """gs:// folders are written by one process and read by another (the pipeline and thesis
  drivers and their phase processes; a notebook reading a running run), but gcsfs caches
  each folder's listing per process, so an object written since looks missing. List afresh
  every time, unless the user configured gcsfs otherwise."""
  try:
    import fsspec.config
  except ImportError:
    return
  fsspec.config.conf.setdefault("gs", {}).setdefault("use_listings_cache", False)


_fresh_gcs_listings()


def load(path: str, step: int | None = None, devices=None, scan_layers: bool | None = None):
  """Reloads a checkpoint for probing; see rf_jax.api."""
  from rf_jax.api import load as _load  # lazy: `import rf_jax` stays cheap
  return _load(path, step, devices, scan_layers)
