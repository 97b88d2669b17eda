"""Joining a multi-process JAX run, and leaving it when a peer dies.

A process whose peer died (its host lost, or the process killed) would otherwise wait in the
next collective until JAX's own heartbeat timeout aborts it with a C++ stack dump. `PeerWatch`
notices first: every process bumps a counter in the coordination service's key-value store,
and one whose peer's counter stops moving for `timeout_s` prints one line naming that peer
and exits, so a launcher can restart every process from the last checkpoint.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from rf_jax.errors import ConfigError

PEER_TIMEOUT_S = 60.0   # default: a peer silent this long is taken for dead
_KEY = "rf_jax/alive/"


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, peer_timeout_s: float = PEER_TIMEOUT_S) -> None:
  """Joins a multi-process run when there is one; a single process needs nothing.

  Explicit coordinator flags win; otherwise a TPU VM slice (several worker hostnames) or a
  SLURM job with several tasks is joined from its environment. JAX's own heartbeat timeout
  is kept above `peer_timeout_s`, so that PeerWatch reports a lost peer before JAX aborts.
  """
  import jax
  heartbeat = max(100, int(2 * peer_timeout_s))
  if coordinator:
    if num_processes is None or process_id is None:
      raise ConfigError("--coordinator_address needs --num_processes and --process_id too")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, heartbeat_timeout_seconds=heartbeat)
  elif "," in os.environ.get("TPU_WORKER_HOSTNAMES", "") or \
      int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    # peers from the TPU VM metadata or the SLURM environment
    jax.distributed.initialize(heartbeat_timeout_seconds=heartbeat)


def coordination_client():
  """JAX's client of the coordination service, or None in a single-process run."""
  import jax
  from jax._src import distributed  # the client has no public accessor (Orbax reads it so too)
  return distributed.global_state.client if jax.process_count() > 1 else None


class PeerWatch:
  """Exits this process, with one line naming the peer, when a peer stops answering.

  A beat thread writes this process's counter every `interval_s` and reads the others'; a
  check thread (no remote calls, so it cannot block) compares the times it last saw each
  counter move with `timeout_s`. A process that ends normally writes "done" and is never
  taken for dead. A dead peer is reported within timeout_s + interval_s + 1 s.
  """

  def __init__(self, client, me: int, count: int, timeout_s: float, interval_s: float):
    self.client, self.me, self.timeout_s, self.interval_s = client, me, timeout_s, interval_s
    self.peers = [p for p in range(count) if p != me]
    self.count = count
    now = time.monotonic()
    self.seen = {p: now for p in self.peers}   # when each peer's counter last moved
    self.values: dict[int, str] = {}
    self.contact = now                          # the last successful call to the service
    self._stop = threading.Event()
    self._threads = [threading.Thread(target=f, daemon=True, name=f"rf_jax-{f.__name__}")
                     for f in (self._beat, self._check)]

  def start(self) -> "PeerWatch":
    for t in self._threads:
      t.start()
    return self

  def stop(self) -> None:
    """This process is done: its peers must not wait for its counter any more."""
    self._stop.set()
    try:
      self.client.key_value_set(_KEY + str(self.me), "done", allow_overwrite=True)
    except Exception:  # noqa: BLE001 - the service may already be gone at the very end
      pass

  def _beat(self) -> None:
    n = 0
    while not self._stop.is_set():
      n += 1
      try:
        self.client.key_value_set(_KEY + str(self.me), str(n), allow_overwrite=True)
        for p in self.peers:
          self._read(p)
        self.contact = time.monotonic()
      except Exception:  # noqa: BLE001 - the coordinator is unreachable: contact goes stale
        pass
      self._stop.wait(self.interval_s)

  def _read(self, p: int) -> None:
    try:
      value = self.client.key_value_try_get(_KEY + str(p))
    except Exception:  # noqa: BLE001 - not written yet: the peer is still starting
      return
    if value != self.values.get(p):
      self.values[p], self.seen[p] = value, time.monotonic()

  def _check(self) -> None:
    while not self._stop.wait(1.0):
      lost = self.lost(time.monotonic())
      if lost is not None:
        self._exit(lost)

  def lost(self, now: float) -> int | None:
    """The peer taken for dead at `now`, if any (process 0 when the service is unreachable)."""
    if now - self.contact > self.timeout_s:
      return 0 if self.me != 0 else self.peers[0]
    for p in self.peers:
      if self.values.get(p) != "done" and now - self.seen[p] > self.timeout_s:
        return p
    return None

  def _exit(self, peer: int) -> None:
    what = "the coordinator, process 0" if peer == 0 and self.me != 0 else f"process {peer}"
    sys.stdout.flush()
    sys.stderr.write(
        f"error: {what} of {self.count} stopped responding {self.timeout_s:g} s ago (its host "
        f"died or it was killed); process {self.me} stops too. Restart every process with the "
        "same command: the run resumes from its last checkpoint\n")
    sys.stderr.flush()
    os._exit(1)  # the main thread may be waiting in a collective that will never finish


def watch_peers(timeout_s: float = PEER_TIMEOUT_S) -> PeerWatch | None:
  """Starts a PeerWatch in a multi-process run (None otherwise); call .stop() when done."""
  import jax
  client = coordination_client()
  if client is None or timeout_s <= 0:
    return None
  return PeerWatch(client, jax.process_index(), jax.process_count(), timeout_s,
                   interval_s=min(5.0, timeout_s / 4)).start()
