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
        """Store failures seen since the server started (for /api/replica and metrics)."""
        self._recovering = False
        self._checked = 0.0

    def failed(self, error: Exception) -> None:
        """A write failed: note it and start the recovery task (once)."""
        if self.error is None:
            self.since = now_iso()
            logger.error("the store %s cannot write (%s): runs pause at their last durable record until it can",
                         self.store.url, error)
        self.failures += 1
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
        delay, longest = BACKOFF
        try:
            while True:
                await asyncio.sleep(delay)
                error = await self._probe()
                if error is None:
                    self.error = None
                    try:
                        if await self.recover():
                            logger.info("the store %s writes again: stranded runs continue", self.store.url)
                            return
                    except StoreError as exc:
                        error = exc
                if error is not None:
                    self.error = error
                delay = min(delay * 2, longest)
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
