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
from typing import Any

from workflows import Context, Workflow
from workflows.context.serializers import JsonSerializer
from workflows.errors import WorkflowRuntimeError
from workflows.events import Event, StartEvent
from workflows.handler import WorkflowHandler
from workflows.runtime.journal import JournalRecord, RunConcluded, RunIdle
from workflows_server.durable import DurableRuntime, idle_payload, only_waits
from workflows_server.store import TERMINAL, HandlerExists, HandlerRow, HandlerUpdate, NewStreamEvent, now_iso

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

    def __init__(self, runtime: DurableRuntime, workflows: dict[str, Workflow], *, idle_release_seconds: float = 0.0):
        self.runtime = runtime
        self.store = runtime.store
        self.workflows = workflows
        self.idle_release_seconds = idle_release_seconds
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
        """Continue every run the store holds as running (after a crash or a restart)."""
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
        self.runtime.detach()
        handlers = [*self.live.values(), *self.releasing.values()]
        for handler in handlers:
            handler._run.driver.cancel()
        if handlers:
            await asyncio.gather(*(h._run.driver for h in handlers), return_exceptions=True)
        self.live.clear()
        self.releasing.clear()

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
        if self.runtime.release(handler):
            del self.live[handler_id]
            self.releasing[handler_id] = handler
            self.waiting += 1
            self.counts["released"] += 1

    def _track(self, handler_id: str, handler: WorkflowHandler) -> None:
        self.live[handler_id] = handler

        def ended(_: Any) -> None:
            if self.releasing.get(handler_id) is handler:
                del self.releasing[handler_id]
                return
            if self.live.get(handler_id) is not handler:
                return
            del self.live[handler_id]
            if self.stopping:
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
            await changed

    async def send(self, handler_id: str, event: Event, step: str | None = None) -> None:
        """Deliver ``event`` to a running or waiting run; returns once the event is journaled."""
        row = self.get(handler_id)
        if row.status in TERMINAL:
            raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
        workflow = self.workflow_of(row)
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
                if row.status == "running":
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

    def is_waiting(self, row: HandlerRow) -> bool:
        return row.status == "running" and row.waiting_since is not None and row.handler_id not in self.live


__all__ = ["Hub", "RunConflict", "RunManager", "RunNotFound", "only_waits"]
