"""Orbax checkpoints of {state, data, meta}: async saves, resume with fallback.

A checkpoint that fails to restore (truncated, corrupted) is moved aside to
`<workdir>/corrupt_checkpoints/` — never deleted — and the previous one is used.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sys
import time
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath

from rf_jax.errors import ConfigError
from rf_jax.layout import layout_hint

ITEMS = ("state", "data", "meta")
TMP = ".orbax-checkpoint-tmp"  # Orbax writes a step here and renames it when complete


class DiskFull(ConfigError):
  """A save ran out of space; earlier checkpoints are intact."""


def late_io_callback(unraisable) -> bool:
  """True for tensorstore I/O that finished after Orbax closed the event loop awaiting it.

  Orbax runs each save or restore on an event loop of its own and closes it as soon as the
  operation ends, also when it failed part-way (a damaged checkpoint, a full disk): reads or
  writes it had started still complete later, and tensorstore's completion callback then
  finds the loop closed and reports `RuntimeError: Event loop is closed` as an unraisable
  exception, with a traceback, at some later moment. The failed operation has already raised
  (and been handled); the late callback has nothing left to deliver.
  """
  e, tb = unraisable.exc_value, unraisable.exc_traceback
  if not (isinstance(e, RuntimeError) and str(e) == "Event loop is closed"
          and unraisable.object is None):
    return False
  while tb is not None:
    if tb.tb_frame.f_code.co_name == "call_soon_threadsafe":
      return True
    tb = tb.tb_next
  return False


def drop_late_io_callbacks() -> None:
  """Installs (once) an unraisable-exception hook that drops late_io_callback reports and
  passes every other one to the hook it replaces."""
  previous = sys.unraisablehook
  if getattr(previous, "drops_late_io_callbacks", False):
    return

  def hook(unraisable):
    if not late_io_callback(unraisable):
      previous(unraisable)

  hook.drops_late_io_callbacks = True
  sys.unraisablehook = hook


drop_late_io_callbacks()


def absolute(workdir: str) -> str:
  """Orbax needs absolute local paths; remote ones (gs://) pass through."""
  return str(workdir) if "://" in str(workdir) else os.path.abspath(workdir)


class QuietOutOfSpace(logging.Filter):
  """Drops Orbax's error logs (with tracebacks, one per writer thread) of a save that ran out
  of space, and asyncio's "Task exception was never retrieved" for its writer tasks when they
  are collected later: the trainer reports that failure itself, in one line (DiskFull)."""

  def filter(self, record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not (out_of_space(error) or "No space left on device" in record.getMessage())


_QUIET = QuietOutOfSpace()


class Checkpointer:

  def __init__(self, workdir: str, keep: int, async_save: bool = True):
    for name in ("absl", "asyncio"):
      logging.getLogger(name).addFilter(_QUIET)  # once: the same filter object
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
    with self._out_of_space(step, state):
      self._manager.save(step, args=ocp.args.Composite(**args), force=True)

  def wait(self) -> None:
    with self._out_of_space():
      self._manager.wait_until_finished()

  def close(self) -> None:
    self.wait()
    self._manager.close()

  @contextlib.contextmanager
  def _out_of_space(self, step: int | None = None, state=None):
    """Turns a save that ran out of space (now, or an async one before) into DiskFull, after
    removing its partial folder; the checkpoints before it are left as they are."""
    try:
      yield
    except Exception as e:  # noqa: BLE001 - Orbax wraps the OS error in its own types
      if not out_of_space(e):
        raise
      failed = self._remove_partial() or [step]
      with contextlib.suppress(Exception):  # join the failed save's threads quietly
        self._manager.close()
      raise DiskFull(self._space_message(failed[0], state)) from None

  def _remove_partial(self) -> list[int]:
    """Deletes the folders of saves that did not complete; returns their steps."""
    steps = []
    for p in self.directory.iterdir():
      if TMP in p.name:
        steps.append(int(p.name.split(".")[0]) if p.name.split(".")[0].isdigit() else -1)
        if jax.process_index() == 0:
          shutil.rmtree(p, ignore_errors=True)
    return sorted(steps)

  def _space_message(self, step, state) -> str:
    done = self.all_steps()
    need = (folder_bytes(self.directory / str(max(done))) if done else
            sum(x.nbytes for x in jax.tree.leaves(state)) if state is not None else 0)
    free = shutil.disk_usage(str(self.directory)).free
    kept = (f"checkpoints {', '.join(map(str, sorted(done)))} are intact" if done else
            "no earlier checkpoint exists")
    return (f"no space left on device saving checkpoint step {step} in {self.directory}: a "
            f"checkpoint needs about {mib(need)} and {mib(free)} is free (keeping "
            f"train.keep_checkpoints={self._keep} needs {self._keep + 1} of them at once); "
            f"{kept}. Free space or use a --workdir on a larger disk, then rerun to resume")

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


def out_of_space(error: BaseException) -> bool:
  """True when `error` (or what caused it) is the OS saying the disk is full."""
  seen = 0
  while error is not None and seen < 16:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if "No space left on device" in str(error) or "os_error_code='28'" in str(error):
      return True
    error, seen = error.__cause__ or error.__context__, seen + 1
  return False


def folder_bytes(path) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(str(path))
             for f in files)


def mib(n: int) -> str:
  return f"{n / 2**20:.1f} MiB"


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
