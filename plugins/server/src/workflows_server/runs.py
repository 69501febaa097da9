"""The server's runs: start, wait, send events to, cancel and continue them, on one event loop.

Everything here runs on the server's event loop and touches a run's in-memory state
only between awaits, so two requests about one run never interleave mid-change: an
answer to a run that is being let go of either reaches it before it is let go of, or
continues it from the store afterwards (never "no active run"). Continuing a run from
the store is serialized per run by a lock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from workflows import Context, Workflow
from workflows.context.serializers import JsonSerializer
from workflows.errors import WorkflowRuntimeError
from workflows.events import Event, StartEvent
from workflows.handler import WorkflowHandler
from workflows.runtime.journal import JournalRecord, RunConcluded, RunIdle
from workflows_server.durable import DurableRuntime, idle_payload, only_waits
from workflows_server.replicas import Replica
from workflows_server.store import (
    TERMINAL,
    HandlerExists,
    HandlerRow,
    HandlerUpdate,
    NewStreamEvent,
    SharedStore,
    StoreError,
    now_iso,
)

logger = logging.getLogger("workflows_server")


class RunNotFound(LookupError):
    """No handler with this id."""


class RunConflict(RuntimeError):
    """The request does not fit the run's state (finished, already running, not served here)."""


class Hub:
    """In-process wake-ups: whoever waits on a run's key is woken when the run writes."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[None]] = {}

    def future(self, key: str) -> asyncio.Future[None]:
        """A future set at the next ``notify(key)``; take it before reading, then await it."""
        found = self._futures.get(key)
        if found is None or found.done():
            found = self._futures[key] = asyncio.get_running_loop().create_future()
        return found

    def notify(self, key: str) -> None:
        found = self._futures.pop(key, None)
        if found is not None and not found.done():
            found.set_result(None)


def _cancelled_envelope() -> dict[str, Any]:
    return {
        "value": {}, "type": "WorkflowCancelledEvent", "types": ["StopEvent"],
        "qualified_name": "workflows.events.WorkflowCancelledEvent",
    }


def _failed_envelope(error: str) -> dict[str, Any]:
    return {
        "value": {"error": error}, "type": "WorkflowFailedEvent", "types": ["StopEvent"],
        "qualified_name": "workflows.events.WorkflowFailedEvent",
    }


class RunManager:
    """Runs of the workflows a server serves, kept in ``runtime.store``."""

    def __init__(
        self,
        runtime: DurableRuntime,
        workflows: dict[str, Workflow],
        *,
        idle_release_seconds: float = 0.0,
        lease_seconds: float = 30.0,
        max_runs: int = 100,
        poll_seconds: float = 1.0,
        retention_seconds: float = 0.0,
    ):
        self.runtime = runtime
        self.store = runtime.store
        self.workflows = workflows
        self.idle_release_seconds = idle_release_seconds
        self.retention_seconds = retention_seconds
        self.poll_seconds = poll_seconds
        self.replica: Replica | None = None
        """Set on a shared store (PostgreSQL): this process's part among the replicas."""
        if isinstance(self.store, SharedStore):
            self.replica = Replica(
                self, self.store, lease_seconds=lease_seconds, max_runs=max_runs, poll_seconds=poll_seconds
            )
        self._retention: asyncio.Task[None] | None = None
        self.hub = Hub()
        self.live: dict[str, WorkflowHandler] = {}
        # Runs let go of whose task is still ending (their run id is free once it has).
        self.releasing: dict[str, WorkflowHandler] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.waiting = 0
        self.counts: Counter[str] = Counter()
        self.stopping = False
        runtime.listeners.append(self._on_record)

    # ------------------------------------------------------------------ lifetime
    async def start(self) -> None:
        """Continue every run the store holds as running (after a crash or a restart).

        On a shared store, runs are not all taken at once: the replica claims what it has
        room for (free runs, and runs whose owner's lease lapsed), as every replica does.
        """
        if self.retention_seconds > 0:
            self._retention = asyncio.get_running_loop().create_task(self._purge_loop())
        if self.replica is not None:
            await self.replica.start()
            self.replica.kick()
            return
        for row in self.store.list_handlers(status=["running"]):
            workflow = self.workflows.get(row.workflow_name)
            if workflow is None:
                logger.warning(
                    "run %s of workflow %r is left in the store: this server does not serve that workflow",
                    row.handler_id, row.workflow_name,
                )
                continue
            try:
                handler = self.runtime.continue_run(workflow, row.handler_id)
            except Exception as exc:
                logger.exception("run %s could not be continued; it is marked failed", row.handler_id)
                self._fail(row.handler_id, f"could not be continued from the store: {type(exc).__name__}: {exc}")
                continue
            if handler is not None:
                self.counts["continued"] += 1
                self._track(row.handler_id, handler)
            else:
                again = self.store.get_handler(row.handler_id)
                if again is not None and again.status == "running":
                    self.waiting += 1

    async def stop(self) -> None:
        """Let go of live runs without recording an end: the next server continues them."""
        self.stopping = True
        if self._retention is not None:
            self._retention.cancel()
        if self.replica is not None:
            await self.replica.stop()
        self.runtime.detach()
        handlers = [*self.live.values(), *self.releasing.values()]
        for handler in handlers:
            handler._run.driver.cancel()
        if handlers:
            await asyncio.gather(*(h._run.driver for h in handlers), return_exceptions=True)
        self.live.clear()
        self.releasing.clear()
        if self.replica is not None:
            self.replica.let_go()

    async def _purge_loop(self) -> None:
        # Every replica purges; a run is deleted once (rows being purged elsewhere are skipped).
        interval = min(3600.0, max(1.0, self.retention_seconds / 10))
        while True:
            before = (datetime.now(timezone.utc) - timedelta(seconds=self.retention_seconds)).isoformat()
            try:
                while self.store.purge_finished(before) > 0:
                    await asyncio.sleep(0)
            except StoreError as exc:
                logger.warning("purging finished runs failed: %s", exc)
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ notifications
    def _on_record(self, handler_id: str, record: JournalRecord, sequence: int | None) -> None:
        if sequence is not None or isinstance(record, RunConcluded):
            self.hub.notify(handler_id)
        if isinstance(record, RunIdle):
            loop = asyncio.get_running_loop()
            if self.idle_release_seconds > 0:
                loop.call_later(self.idle_release_seconds, self._maybe_release, handler_id)
            else:
                loop.call_soon(self._maybe_release, handler_id)

    def _maybe_release(self, handler_id: str) -> None:
        handler = self.live.get(handler_id)
        lock = self.locks.get(handler_id)
        if handler is None or self.stopping or (lock is not None and lock.locked()):
            return
        if self.replica is not None and handler_id in self.replica.mail:
            return
        try:
            released = self.runtime.release(handler)
        except StoreError as exc:  # fenced out (another replica holds it) or the store failed
            logger.warning("run %s could not be let go of: %s", handler_id, exc)
            released = True
        if released:
            del self.live[handler_id]
            self.releasing[handler_id] = handler
            self.waiting += 1
            self.counts["released"] += 1

    def _track(self, handler_id: str, handler: WorkflowHandler) -> None:
        self.live[handler_id] = handler

        def ended(_: Any) -> None:
            if self.releasing.get(handler_id) is handler:
                del self.releasing[handler_id]
                if self.replica is not None and not self.stopping:
                    self.replica.ended(handler_id, handler)
                return
            if self.live.get(handler_id) is not handler:
                return
            del self.live[handler_id]
            if self.stopping:
                return
            if self.replica is not None:
                self.replica.ended(handler_id, handler)
                return
            row = self.store.get_handler(handler_id)
            if row is not None and row.status == "running" and row.run_id == handler.run_id:
                # The run ended without its end in the journal (its store write failed).
                driver = handler._run.driver
                error = None if driver.cancelled() else driver.exception()
                self._fail(handler_id, f"{type(error).__name__}: {error}" if error else "the run ended unrecorded")

        handler._run.driver.add_done_callback(ended)

    def _fail(self, handler_id: str, error: str) -> None:
        self.store.add_stream_event(
            handler_id,
            NewStreamEvent(envelope=_failed_envelope(error), terminal=True),
            HandlerUpdate(status="failed", error=error, completed_at=now_iso()),
        )
        self.hub.notify(handler_id)

    # ------------------------------------------------------------------ queries
    def get(self, handler_id: str) -> HandlerRow:
        row = self.store.get_handler(handler_id)
        if row is None:
            raise RunNotFound(f"handler {handler_id!r} not found")
        return row

    def workflow_of(self, row: HandlerRow) -> Workflow:
        workflow = self.workflows.get(row.workflow_name)
        if workflow is None:
            raise RunConflict(f"handler {row.handler_id!r} belongs to workflow {row.workflow_name!r}, not served here")
        return workflow

    # ------------------------------------------------------------------ commands
    def start_run(
        self, name: str, start_event: StartEvent, *, handler_id: str | None = None, context: dict[str, Any] | None = None
    ) -> HandlerRow:
        """Start a run now and record it; it goes on in the background."""
        workflow = self.workflows[name]
        handler_id = handler_id or uuid.uuid4().hex
        existing = self.store.get_handler(handler_id)
        if existing is not None and existing.status not in TERMINAL:
            raise RunConflict(f"handler {handler_id!r} is already running")
        if context:
            ctx: Context[Any] = Context.from_dict(workflow, context)
            resume_id = ctx.resume_id
            if resume_id is not None:
                earlier = self.store.claim_resume(resume_id, handler_id)
                if earlier is not None:
                    raise RunConflict(
                        f"this saved context (resume id {resume_id!r}) was already resumed by handler {earlier!r}: "
                        "resuming it again would run the work after its snapshot twice; resume each to_dict() "
                        "payload once, or send a context saved after that run"
                    )
        elif existing is not None:
            ctx = self._next_run_context(workflow, existing)
        else:
            ctx = Context(workflow)
        base = ctx.to_dict()
        serializer = workflow.serializer or JsonSerializer()
        run_id = uuid.uuid4().hex[:16]
        row = HandlerRow(
            handler_id=handler_id, workflow_name=name, run_id=run_id, start_event=serializer.serialize(start_event)
        )
        if self.replica is not None:
            return self._start_shared(row, ctx, start_event, base, existing)
        # Nothing awaits between starting the run and recording it: the run's first
        # record is written by its task, which begins after the row exists.
        handler = workflow.run(ctx=ctx, start_event=start_event, run_id=run_id)
        try:
            if existing is None:
                self.store.create_handler(row, base)
                epoch = 0
            else:
                self.store.restart_handler(row, base)
                epoch = existing.epoch + 1
        except HandlerExists:
            handler._run.driver.cancel()
            raise RunConflict(f"handler {handler_id!r} already exists") from None
        except BaseException:
            handler._run.driver.cancel()
            raise
        self.runtime.expect(run_id, handler_id, epoch)
        self._track(handler_id, handler)
        self.counts["started"] += 1
        return self.get(handler_id)

    def _start_shared(
        self, row: HandlerRow, ctx: Context[Any], start_event: StartEvent | None, base: dict[str, Any],
        existing: HandlerRow | None,
    ) -> HandlerRow:
        # The run is queued in the store; this replica runs it at once if it has room and
        # wins the claim, else whichever replica has room claims it.
        assert self.replica is not None
        handler_id = row.handler_id
        try:
            if existing is None:
                self.store.create_handler(row, base)
                epoch = 0
            else:
                self.store.restart_handler(row, base)
                epoch = existing.epoch + 1
        except HandlerExists:
            raise RunConflict(f"handler {handler_id!r} already exists") from None
        claim = None
        if self.replica.room() > 0:
            claim = self.store.claim_one(handler_id, lease_seconds=self.replica.lease_seconds)  # type: ignore[attr-defined]
        if claim is not None:
            self.replica.counts["claimed"] += 1
            workflow = self.workflows[row.workflow_name]
            if start_event is None:  # a running context (a fork) goes on from its work
                handler = workflow.run(ctx=ctx, run_id=row.run_id)
            else:
                handler = workflow.run(ctx=ctx, start_event=start_event, run_id=row.run_id)
            self.runtime.expect(row.run_id, handler_id, epoch)
            self._track(handler_id, handler)
        self.counts["started"] += 1
        return self.get(handler_id)

    def start_from_context(self, name: str, ctx: Context[Any], *, handler_id: str | None = None) -> HandlerRow:
        """Start a new handler that continues ``ctx`` (a running context, e.g. a fork of another run).

        The run goes on from the work ``ctx`` holds, without a start event.
        """
        workflow = self.workflows[name]
        handler_id = handler_id or uuid.uuid4().hex
        if self.store.get_handler(handler_id) is not None:
            raise RunConflict(f"handler {handler_id!r} already exists")
        base = ctx.to_dict()
        run_id = uuid.uuid4().hex[:16]
        if self.replica is not None:
            row = HandlerRow(handler_id=handler_id, workflow_name=name, run_id=run_id)
            return self._start_shared(row, ctx, None, base, None)
        handler = workflow.run(ctx=ctx, run_id=run_id)
        try:
            self.store.create_handler(HandlerRow(handler_id=handler_id, workflow_name=name, run_id=run_id), base)
        except BaseException:
            handler._run.driver.cancel()
            raise
        self.runtime.expect(run_id, handler_id, 0)
        self._track(handler_id, handler)
        self.counts["started"] += 1
        return self.get(handler_id)

    def _next_run_context(self, workflow: Workflow, row: HandlerRow) -> Context[Any]:
        # A new run under a finished handler keeps its state and session.
        rebuilt = self.runtime.rebuild(workflow, row)
        payload = rebuilt.ctx.to_dict() if rebuilt.ctx is not None else dict(rebuilt.payload or {})
        return Context.from_dict(workflow, idle_payload(payload))

    async def wait_finished(self, handler_id: str) -> HandlerRow:
        """Wait until the run has ended (it may wait for a human meanwhile) and return its row."""
        while True:
            changed = self.hub.future(handler_id)
            row = self.get(handler_id)
            if row.status in TERMINAL:
                return row
            await self.changed(changed)

    async def changed(self, future: asyncio.Future[None], timeout: float | None = None) -> bool:
        """Wait for a hub future; on a shared store at most ``poll_seconds`` (a notification can be
        missed while the LISTEN connection reconnects). Returns whether the future was set."""
        if self.replica is not None:
            timeout = self.poll_seconds if timeout is None else min(timeout, self.poll_seconds)
        if timeout is None:
            await future
            return True
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def send(self, handler_id: str, event: Event, step: str | None = None) -> None:
        """Deliver ``event`` to a running or waiting run; returns once the event is journaled."""
        row = self.get(handler_id)
        if row.status in TERMINAL:
            raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
        workflow = self.workflow_of(row)
        if self.replica is not None:
            handler = self.live.get(handler_id)
            if handler is None or handler.is_done() or handler_id not in self.replica.store.held():
                await self._send_shared(workflow, handler_id, event, step)
                return
        lock = self.locks.setdefault(handler_id, asyncio.Lock())
        try:
            async with lock:
                row = self.get(handler_id)
                if row.status in TERMINAL:
                    raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
                handler = self.live.get(handler_id)
                if handler is not None and not handler.is_done():
                    handler.ctx.send_event(event, step)
                    return
                old = self.releasing.get(handler_id)
                if old is not None:
                    # Its run id is free once the task that let go of it has ended.
                    await asyncio.gather(old._run.driver, return_exceptions=True)
                was_waiting = row.waiting_since is not None
                try:
                    handler = self.runtime.continue_run(workflow, handler_id, start_waiting=True)
                except WorkflowRuntimeError:
                    raise
                if handler is None:
                    raise RunConflict(f"handler {handler_id!r} has finished: it takes no more events")
                if was_waiting:
                    self.waiting -= 1
                self.counts["continued"] += 1
                self._track(handler_id, handler)
                begun = self.runtime.begun(handler.run_id)
                if begun is not None:
                    # Sent once the run has begun (its waits armed again), so the
                    # event is journaled before the request is answered.
                    await asyncio.wait([begun, handler._run.driver], return_when=asyncio.FIRST_COMPLETED)
                handler.ctx.send_event(event, step)
        finally:
            if not lock.locked() and self.locks.get(handler_id) is lock:
                del self.locks[handler_id]
            # A run continued for an event it then refused is let go of again.
            asyncio.get_running_loop().call_soon(self._maybe_release, handler_id)

    async def _send_shared(self, workflow: Workflow, handler_id: str, event: Event, step: str | None) -> None:
        # Wherever the run is (on another replica, or waiting in the store), the event goes to
        # its inbox: the owner delivers it, or whichever replica claims the waiting run.
        assert self.replica is not None
        if step is not None and step not in type(workflow)._get_steps_from_class():
            raise WorkflowRuntimeError(f"Step {step} does not exist")
        serialized = (workflow.serializer or JsonSerializer()).serialize(event)
        item = self.replica.store.post(handler_id, kind="event", event=serialized, step=step)
        self.replica.kick()
        delivered = await self.replica.wait_delivered(handler_id, item, timeout=2 * self.replica.lease_seconds + 5)
        if not delivered:
            row = self.get(handler_id)
            if row.status in TERMINAL and self.replica.store.pending(item):
                self.replica.store.ack([item])
                raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
            # Still in the inbox: it is delivered when a replica takes the run.

    async def cancel(self, handler_id: str, *, purge: bool = False) -> str:
        """Cancel the run (if it has not ended) and, with ``purge``, delete it; returns the API status."""
        row = self.get(handler_id)
        lock = self.locks.setdefault(handler_id, asyncio.Lock())
        try:
            async with lock:
                handler = self.live.get(handler_id)
                if handler is not None:
                    await handler.cancel_run()
                row = self.get(handler_id)
                if row.status == "running" and self.replica is not None:
                    await self._cancel_shared(handler_id)
                    row = self.get(handler_id)
                if row.status == "running" and self.replica is None:
                    # A run held by the store alone (or cancelled before its first record).
                    if row.waiting_since is not None:
                        self.waiting -= 1
                    self.store.add_stream_event(
                        handler_id,
                        NewStreamEvent(envelope=_cancelled_envelope(), terminal=True),
                        HandlerUpdate(status="cancelled", completed_at=now_iso()),
                    )
                    self.hub.notify(handler_id)
                if purge:
                    self.store.delete_handler(handler_id)
                    self.hub.notify(handler_id)
                    return "deleted"
                return "cancelled"
        finally:
            if not lock.locked() and self.locks.get(handler_id) is lock:
                del self.locks[handler_id]

    async def _cancel_shared(self, handler_id: str) -> None:
        assert self.replica is not None
        store = self.replica.store
        claim = store.claim_one(handler_id, lease_seconds=self.replica.lease_seconds)
        if claim is not None:
            # Free (queued or waiting) or its owner is gone: this replica records the end.
            try:
                store.add_stream_event(
                    handler_id,
                    NewStreamEvent(envelope=_cancelled_envelope(), terminal=True),
                    HandlerUpdate(status="cancelled", completed_at=now_iso()),
                )
            finally:
                store.unclaim(handler_id)
            self.hub.notify(handler_id)
            return
        # Held by a live replica: it cancels the run when it reads its inbox.
        item = store.post(handler_id, kind="cancel")
        await self.replica.wait_delivered(handler_id, item, timeout=2 * self.replica.lease_seconds + 5)
        deadline = asyncio.get_running_loop().time() + self.replica.lease_seconds + 5
        while self.get(handler_id).status == "running" and asyncio.get_running_loop().time() < deadline:
            await self.changed(self.hub.future(handler_id), timeout=self.poll_seconds)

    def is_waiting(self, row: HandlerRow) -> bool:
        return row.status == "running" and row.waiting_since is not None and row.handler_id not in self.live


__all__ = ["Hub", "RunConflict", "RunManager", "RunNotFound", "only_waits"]
