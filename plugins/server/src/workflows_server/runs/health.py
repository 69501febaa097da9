"""``StoreHealth``: whether the store accepts writes now, and the recovery of the runs a failed write stranded.

A write that fails (disk full, file read-only, connection lost, database restarted)
*strands* its run: the run acts no more (see ``DurableRuntime.strand``) and waits in
``LiveRuns.stranded``. ``failed()`` starts the one recovery task: it probes the store
(``RunStore.probe``: one small real write, after reopening or reconnecting) with a
growing back-off, and once a probe succeeds it hands every stranded run to
``recover`` (the placement continues it from its last durable record, or records the
end it could not record). ``/health`` answers from ``check()``: the last failure, or a
fresh probe when no write succeeded recently (a busy server answers at once: its own
flushes are the check).

A store can take a probe and then refuse the next real write: a full disk still
takes what fits in the room SQLite's WAL already has, a failing network lets some
round trips through. A failure that comes back within ``STEADY`` seconds of a recovery
is probed at the pace the last recovery had reached, not from the first pause again:
the pauses keep growing, and ``/health`` says 503 for longer each time instead of
flapping at every probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from workflows_server.runs.tasks import Tasks
from workflows_server.store import RunStore, StoreError, now_iso
from workflows_server.store.worker import StoreWorker

logger = logging.getLogger("workflows_server")

PROBE_TIMEOUT = 2.0
"""How long a probe may take before the store counts as unable to write (a hung disk, a lost network)."""
BACKOFF = (0.1, 5.0)
"""The first and the longest pause between two probes while the store fails."""
FRESH = 2.0
"""``/health`` probes the store itself when its last successful write is older than this (seconds)."""
STEADY = 30.0
"""Seconds a recovered store must go without failing before its next recovery starts from the first pause."""


class StoreHealth:
    """See the module docstring. ``recover`` continues the stranded runs; it raises ``StoreError`` to go on probing."""

    def __init__(self, store: RunStore, worker: StoreWorker, tasks: Tasks, recover: Callable[[], Awaitable[bool]]) -> None:
        self.store = store
        self.worker = worker
        self.tasks = tasks
        self.recover = recover
        self.error: StoreError | None = None
        """Why the store cannot write now (``None``: it can, as far as the last write or probe knows)."""
        self.since: str | None = None
        self.failures = 0
        """How many times the store began to fail since the server started (for /api/replica and metrics)."""
        self._recovering = False
        self._checked = 0.0
        self._pause = BACKOFF[0]
        """The first pause of the next recovery, if it starts within ``STEADY`` seconds of the last one's end."""
        self._recovered_at = -STEADY

    def failed(self, error: Exception) -> None:
        """A write failed (any write: the worker reports each failed flush): note it and start the recovery task (once)."""
        if self.error is None:
            self.since = now_iso()
            self.failures += 1
            logger.error("the store %s cannot write (%s): runs pause at their last durable record until it can",
                         self.store.url, error)
        self.error = error if isinstance(error, StoreError) else StoreError(str(error))
        if not self._recovering and not self.tasks.closed:
            self._recovering = True
            self.tasks.spawn(self._recover(), "workflows-server-store-recovery")

    async def _probe(self) -> StoreError | None:
        try:
            await asyncio.wait_for(self.worker.write(self.store.probe), timeout=PROBE_TIMEOUT)
        except NotImplementedError:
            return None  # a store that cannot probe: only real writes tell
        except StoreError as exc:
            return exc
        except asyncio.TimeoutError:
            return StoreError(f"the store {self.store.url} did not answer a write within {PROBE_TIMEOUT}s")
        self._checked = time.monotonic()
        return None

    async def _recover(self) -> None:
        first, longest = BACKOFF
        flapping = time.monotonic() - self._recovered_at < STEADY
        delay = self._pause if flapping else first
        try:
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                error = await self._probe()
                if error is None:
                    self.error = None
                    try:
                        if await self.recover():
                            logger.info("the store %s writes again: stranded runs continue", self.store.url)
                            self._recovered_at, self._pause = time.monotonic(), delay
                            return
                    except StoreError as exc:
                        error = exc
                if error is not None:
                    self.error = error
        finally:
            self._recovering = False

    async def check(self) -> StoreError | None:
        """The store's error now (``None``: it writes): the recovery's last word, or a fresh probe."""
        if self.error is not None:
            return self.error
        if time.monotonic() - max(self._checked, self.worker.stats.written_at) > FRESH:
            error = await self._probe()
            if error is not None:
                self.failed(error)
                return error
        return None


__all__ = ["StoreHealth"]
