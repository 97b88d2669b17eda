"""Orbax checkpoints of {state, data, meta}: async saves, resume with fallback.

A checkpoint that fails to restore (truncated, corrupted) is moved aside to
`<workdir>/corrupt_checkpoints/` — never deleted — and the previous one is used.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath

from rf_jax.errors import ConfigError
from rf_jax.layout import layout_hint

ITEMS = ("state", "data", "meta")


def absolute(workdir: str) -> str:
  """Orbax needs absolute local paths; remote ones (gs://) pass through."""
  return str(workdir) if "://" in str(workdir) else os.path.abspath(workdir)


class Checkpointer:

  def __init__(self, workdir: str, keep: int, async_save: bool = True):
    self.workdir = epath.Path(workdir)
    self.directory = self.workdir / "checkpoints"
    self._manager = self._open(async_save, keep)

  def _open(self, async_save: bool, keep: int) -> ocp.CheckpointManager:
    self._keep, self._async = keep, async_save
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, enable_async_checkpointing=async_save, create=True)
    return ocp.CheckpointManager(self.directory, item_names=ITEMS, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state, data_iter, meta: dict[str, Any]) -> None:
    args = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
    if data_iter is not None:
      args["data"] = grain.checkpoint.CheckpointSave(data_iter)
    self._manager.save(step, args=ocp.args.Composite(**args), force=True)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def restore(self, step: int, abstract_state, data_iter, on_meta=None):
    """Restores meta first and calls `on_meta(meta)`, then state and data.

    The order matters: restoring the iterator starts its prefetching, so anything the data
    source reads (the curriculum) must already be in place. The iterator is left alone when
    the checkpoint was written by another number of processes (see train.run).
    """
    meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if on_meta is not None:
      on_meta(meta)
    args = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iter is not None and self.has_data_for_this_process(step):
      args["data"] = grain.checkpoint.CheckpointRestore(data_iter)
    out = self._manager.restore(step, args=ocp.args.Composite(**args))
    return out["state"], meta

  def has_data_for_this_process(self, step: int) -> bool:
    """grain saves one iterator state per process: none fits another process count."""
    name = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    return (self.directory / str(step) / "data" / name).exists()

  def restore_latest(self, abstract_state, data_iter, on_meta=None):
    """(step, state, meta) from the newest checkpoint that restores, or None if none do.

    A checkpoint whose arrays do not match the configured state is a config error
    (the user pointed at the wrong workdir); one that cannot be read is set aside.
    """
    for step in sorted(self.all_steps(), reverse=True):
      try:
        stored = stored_shapes(self.directory / str(step) / "state")
      except Exception as e:  # noqa: BLE001 - unreadable metadata: a damaged checkpoint
        self._set_aside(step, e)
        continue
      check_shapes(stored, abstract_state, f"checkpoint {self.directory / str(step)}")
      try:
        state, meta = self.restore(step, abstract_state, data_iter, on_meta)
        return step, state, meta
      except ConfigError:
        raise  # the checkpoint is fine; the config does not fit it
      except Exception as e:  # noqa: BLE001 - any failure means this step is unusable
        self._set_aside(step, e)
    return None

  def _set_aside(self, step: int, error: Exception) -> None:
    src = self.directory / str(step)
    dst = self.workdir / "corrupt_checkpoints" / f"{step}-{int(time.time())}"
    logging.warning("checkpoint %s does not restore (%s: %s); moved to %s, using an older one",
                    src, type(error).__name__, str(error).splitlines()[0][:200], dst)
    if jax.process_index() == 0:
      dst.parent.mkdir(parents=True, exist_ok=True)
      src.rename(dst)
    _sync(f"set_aside_{step}")
    self._manager.close()
    self._manager = self._open(self._async, self._keep)


def path_name(path) -> str:
  def part(k):
    for attr in ("key", "idx", "name"):  # DictKey, SequenceKey, GetAttrKey (namedtuples)
      if hasattr(k, attr):
        return str(getattr(k, attr))
    return str(k)
  return "/".join(part(k) for k in path)


def stored_shapes(state_dir) -> dict[str, tuple]:
  """Array name → shape, read from an Orbax item's metadata (no array data)."""
  md = ocp.StandardCheckpointHandler().metadata(epath.Path(state_dir))
  return {path_name(p): tuple(m.shape)
          for p, m in jax.tree_util.tree_leaves_with_path(md) if hasattr(m, "shape")}


def check_shapes(stored: dict[str, tuple], abstract_tree, what: str) -> None:
  """Fails loudly, naming the array, unless names and shapes match exactly."""
  wanted = {path_name(p): tuple(a.shape)
            for p, a in jax.tree_util.tree_leaves_with_path(abstract_tree)}
  missing = sorted(set(wanted) - set(stored))
  extra = sorted(set(stored) - set(wanted))
  if hint := layout_hint(stored, wanted):
    raise ConfigError(f"{what} does not match the configured model: {hint}")
  if missing or extra:
    name = (missing or extra)[0]
    where = "is missing from" if missing else "is not in the configured model but is in"
    raise ConfigError(f"{what} does not match the configured model: {name} {where} the "
                      f"checkpoint ({len(missing)} missing, {len(extra)} unexpected); use a new "
                      "--workdir or the checkpoint's own config")
  for name, shape in wanted.items():
    if stored[name] != shape:
      raise ConfigError(f"{what} does not match the configured model: {name} has shape "
                        f"{stored[name]} in the checkpoint but {shape} in the config; use a new "
                        "--workdir or the checkpoint's own config")


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def to_json(obj) -> Any:
  return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
