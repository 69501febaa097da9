"""``LiveRuns``: the runs this process holds in memory, and what happens when each one stops.

A run is *live* from the moment it starts (or is continued from the store) here until
its task ends. Its task ends when the run ends (its end is in the journal), when it is
let go of because it only waits for an outside event (the store alone holds it then),
when one of its writes failed (it is *stranded*: ``stranded`` keeps it until the store
writes again and the placement continues it, see ``runs.health``), or when the server
stops (nothing is recorded: the next server continues it). A run whose task ended any
other way ended without its end recorded; the placement records that end.

Requests that change one run (sending an event, cancelling, letting it go of) hold the
run's lock, so they never interleave mid-change. Every task started here (letting go of
idle runs, judging ended runs) is owned by ``tasks`` and ended by ``close()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

from workflows.events import WorkflowCancelledEvent, WorkflowFailedEvent
from workflows.handler import WorkflowHandler
from workflows.runtime.journal import JournalRecord, RunConcluded, RunIdle, RunInfo
from workflows_server.durable import DurableRuntime
from workflows_server.runs.hub import Hub
from workflows_server.runs.tasks import Tasks
from workflows_server.store import FencedOut, StoreError

logger = logging.getLogger("workflows_server")

EndedHook = Callable[[str, WorkflowHandler, bool], Coroutine[Any, Any, None]]
"""Called (in a task) as ``(handler_id, handler, concluded)`` when a live run's task ended while the
server is not stopping; ``concluded``: the run's end is stored."""


@dataclass(kw_only=True)
class PendingEnd:
    """An end the server decided but could not record yet: ``"failed"`` with ``error``, or ``"cancelled"``."""

    status: str
    error: str | None = None


@dataclass(kw_only=True)
class Stranded:
    """A run a store failure left undone: continued (or its ``end`` recorded) once the store writes again."""

    error: Exception
    end: PendingEnd | None = None
    """The end the server could not record, if that is what failed."""


class RunLock:
    """One run's ``asyncio.Lock``, made on first use and dropped once no request holds or waits for it."""

    def __init__(self, locks: dict[str, asyncio.Lock], users: Counter[str], handler_id: str) -> None:
        self.locks = locks
        self.users = users
        self.handler_id = handler_id

    async def __aenter__(self) -> None:
        lock = self.locks.setdefault(self.handler_id, asyncio.Lock())
        self.users[self.handler_id] += 1
        try:
            await lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.locks[self.handler_id].release()
        self._leave()

    def _leave(self) -> None:
        self.users[self.handler_id] -= 1
        if self.users[self.handler_id] <= 0:
            del self.users[self.handler_id]
            del self.locks[self.handler_id]


class LiveRuns:
    """See the module docstring. ``on_ended`` and ``may_release`` are the placement's say."""

    def __init__(self, runtime: DurableRuntime, *, idle_release_seconds: float = 0.0) -> None:
        self.runtime = runtime
        self.worker = runtime.worker
        self.idle_release_seconds = idle_release_seconds
        self.handlers: dict[str, WorkflowHandler] = {}
        """The live runs, by handler id."""
        self.releasing: dict[str, WorkflowHandler] = {}
        """Runs let go of whose task is still ending (their run id is free once it has)."""
        self.tasks = Tasks()
        self.hub = Hub()
        self.waiting = 0
        """Runs the store alone holds, waiting for an outside event."""
        self.counts: Counter[str] = Counter()
        """started, continued, released."""
        self.concluded: set[str] = set()
        """Run ids of live runs whose end is stored (their task's end needs no check of the store)."""
        self.stranded: dict[str, Stranded] = {}
        """Runs a failed store write stopped, by handler id (see ``strand``)."""
        self.on_store_failed: Callable[[Exception], None] = lambda error: None
        self.stopping = False
        self.on_ended: EndedHook | None = None
        self.may_release: Callable[[str], bool] = lambda handler_id: True
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: Counter[str] = Counter()
        runtime.listeners.append(self._on_record)
        runtime.on_stranded = self._on_stranded

    def lock(self, handler_id: str) -> RunLock:
        """The run's lock: requests that change one run hold it, one at a time."""
        return RunLock(self._locks, self._lock_users, handler_id)

    def busy(self, handler_id: str) -> bool:
        """Whether a request holds the run's lock now."""
        lock = self._locks.get(handler_id)
        return lock is not None and lock.locked()

    # ------------------------------------------------------------------ holding runs
    def track(self, handler_id: str, handler: WorkflowHandler) -> None:
        """Hold ``handler`` as the live run of ``handler_id`` until its task ends."""
        self.handlers[handler_id] = handler

        def ended(_: WorkflowHandler) -> None:
            concluded = handler.run_id in self.concluded
            self.concluded.discard(handler.run_id)
            if self.releasing.get(handler_id) is handler:
                del self.releasing[handler_id]
            elif self.handlers.get(handler_id) is handler:
                del self.handlers[handler_id]
            else:
                return
            if not self.stopping and self.on_ended is not None:
                self.tasks.spawn(self.on_ended(handler_id, handler, concluded), f"workflows-server-ended-{handler_id}")

        handler.add_done_callback(ended)

    def _on_stranded(self, handler_id: str, run_id: str, error: Exception) -> None:
        # A write of the live run failed: it is abandoned here, as a graceful stop does
        # (nothing more is written), and its task's end is no failure.
        for held in (self.handlers, self.releasing):
            handler = held.get(handler_id)
            if handler is not None and handler.run_id == run_id:
                del held[handler_id]
                handler.abandon()
        if isinstance(error, FencedOut):
            return  # another replica holds the run now: it is not this process's to continue
        self.strand(handler_id, error)

    def strand(self, handler_id: str, error: Exception, end: PendingEnd | None = None) -> None:
        """Keep ``handler_id`` for the store's recovery: continued, or ``end`` recorded, once it writes."""
        earlier = self.stranded.get(handler_id)
        self.stranded[handler_id] = Stranded(error=error, end=end or (earlier.end if earlier else None))
        self.hub.notify_ended(handler_id)  # its waiters answer 503 now
        self.on_store_failed(error)

    def _on_record(self, handler_id: str, record: JournalRecord, sequence: int | None) -> None:
        if isinstance(record, RunConcluded):
            live = self.handlers.get(handler_id) or self.releasing.get(handler_id)
            if live is not None and record.run is not None and live.run_id == record.run.run_id:
                self.concluded.add(live.run_id)
            self.hub.notify_ended(handler_id)
        elif sequence is not None:
            self.hub.notify(handler_id)
        if isinstance(record, RunIdle):
            self.release_soon(handler_id, self.idle_release_seconds)

    def release_soon(self, handler_id: str, delay: float = 0.0) -> None:
        """Let go of the run after ``delay`` seconds if it only waits for an outside event then."""
        if self.stopping:
            return
        name = f"workflows-server-release-{handler_id}"
        if delay > 0:
            self.tasks.later(delay, lambda: self._maybe_release(handler_id), name)
        else:
            self.tasks.spawn(self._maybe_release(handler_id), name)

    async def _maybe_release(self, handler_id: str) -> None:
        handler = self.handlers.get(handler_id)
        if handler is None or self.stopping or self.busy(handler_id) or not self.may_release(handler_id):
            return
        # Under the run's lock: an answer that arrives meanwhile waits, then continues the
        # run from the epoch written here.
        async with self.lock(handler_id):
            if self.handlers.get(handler_id) is not handler:
                return
            # Moved first: the run's task ends as it is let go of, and that end is no failure.
            # Counted as waiting from here, so the gauges never miss it while its epoch is written.
            del self.handlers[handler_id]
            self.releasing[handler_id] = handler
            self.waiting += 1
            try:
                released = await self.runtime.release(handler)
            except FencedOut as exc:  # another replica holds it
                logger.warning("run %s could not be let go of: %s", handler_id, exc)
                released = True
            except StoreError as exc:  # its waiting epoch is not written: continued once the store writes
                del self.releasing[handler_id]
                self.waiting -= 1
                self.strand(handler_id, exc)
                return
            if not released:
                del self.releasing[handler_id]
                self.handlers[handler_id] = handler
                self.waiting -= 1
                return
            self.counts["released"] += 1

    # ------------------------------------------------------------------ ends the server records
    async def end(self, handler_id: str, status: str, error: str | None = None) -> None:
        """Record the end of a run that cannot record it itself: ``"failed"`` with ``error`` (its task
        ended without its end in the journal, or it could not be continued), or ``"cancelled"`` (the
        store alone held it). The one place the server writes a run's end; see ``DurableRuntime.end``."""
        row = await self.worker.read(self.runtime.store.get_handler, handler_id)
        if row is None:
            return
        final: WorkflowFailedEvent | WorkflowCancelledEvent
        failure: BaseException | None = None
        if status == "failed":
            failure = RuntimeError(error)
            final = WorkflowFailedEvent(step_name="", exception=failure, attempts=0, elapsed_seconds=0.0)
        else:
            final = WorkflowCancelledEvent()
        info = RunInfo(workflow_name=row.workflow_name, run_id=row.run_id, session_id="")
        record = RunConcluded(run=info, status=status, final_event=final, error=failure)  # type: ignore[arg-type]
        await self.runtime.end(handler_id, row.epoch, record, final, error=failure)
        self.hub.notify_ended(handler_id)

    # ------------------------------------------------------------------ stopping
    async def close(self) -> None:
        """Let go of every live run without recording an end (the next server continues them)."""
        self.stopping = True
        await self.tasks.close()
        self.runtime.detach()
        handlers = [*self.handlers.values(), *self.releasing.values()]
        for handler in handlers:
            handler.abandon()
        await asyncio.gather(*(h.wait_ended() for h in handlers))
        self.handlers.clear()
        self.releasing.clear()


__all__ = ["EndedHook", "LiveRuns", "RunLock"]
