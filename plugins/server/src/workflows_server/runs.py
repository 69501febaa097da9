"""The server's runs: start, wait, send events to, cancel and continue them, on one event loop.

Everything here runs on the server's event loop; store calls go to the store's worker
thread (``runtime.worker``) and are awaited. Requests about one run that change it
(sending an event, cancelling, letting it go of) hold the run's lock, so they never
interleave mid-change: an answer to a run that is being let go of either reaches it
before it is let go of, or continues it from the store afterwards (never "no active
run"). Every task this module starts (letting go of idle runs, recording ends, the
retention loop) is owned by the ``RunManager`` and cancelled and awaited on ``stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Coroutine

from workflows import Context, Workflow
from workflows.context.serializers import JsonSerializer
from workflows.errors import WorkflowRuntimeError
from workflows.events import Event, StartEvent, WorkflowCancelledEvent, WorkflowFailedEvent
from workflows.handler import WorkflowHandler
from workflows.runtime.journal import JournalRecord, RunConcluded, RunIdle, RunInfo
from workflows_server.durable import DurableRuntime, idle_payload, only_waits
from workflows_server.replicas import Replica
from workflows_server.store import (
    TERMINAL,
    HandlerExists,
    HandlerRow,
    SharedStore,
    StoreError,
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

    def notify_all(self) -> None:
        """Wake every waiter (notifications may have been missed: each reads the store again)."""
        for key in list(self._futures):
            self.notify(key)


class Tasks:
    """The background tasks and timers of the runs, owned here: cancelled and awaited on ``close()``."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def later(self, delay: float, make: Callable[[], Coroutine[Any, Any, Any]], name: str) -> None:
        """Spawn ``make()`` after ``delay`` seconds (dropped if closed before)."""
        def fire() -> None:
            self._timers.discard(timer)
            self.spawn(make(), name)

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


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
        self.tasks = Tasks()
        self.worker = runtime.worker
        self.hub = Hub()
        self.live: dict[str, WorkflowHandler] = {}
        # Runs let go of whose task is still ending (their run id is free once it has).
        self.releasing: dict[str, WorkflowHandler] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.lock_users: Counter[str] = Counter()
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
            self.tasks.spawn(self._purge_loop(), "workflows-server-retention")
        if self.replica is not None:
            await self.replica.start()
            self.replica.kick()
            return
        for row in await self.worker.read(self.store.list_handlers, status=["running"]):
            workflow = self.workflows.get(row.workflow_name)
            if workflow is None:
                logger.warning(
                    "run %s of workflow %r is left in the store: this server does not serve that workflow",
                    row.handler_id, row.workflow_name,
                )
                continue
            try:
                handler = await self.runtime.continue_run(workflow, row.handler_id)
            except Exception as exc:
                logger.exception("run %s could not be continued; it is marked failed", row.handler_id)
                await self.fail(row.handler_id, f"could not be continued from the store: {type(exc).__name__}: {exc}")
                continue
            if handler is not None:
                self.counts["continued"] += 1
                self.track(row.handler_id, handler)
            else:
                again = await self.worker.read(self.store.get_handler, row.handler_id)
                if again is not None and again.status == "running":
                    self.waiting += 1

    async def stop(self) -> None:
        """Let go of live runs without recording an end: the next server continues them."""
        self.stopping = True
        await self.tasks.close()
        if self.replica is not None:
            await self.replica.stop()
        self.runtime.detach()
        handlers = [*self.live.values(), *self.releasing.values()]
        for handler in handlers:
            handler.abandon()
        await asyncio.gather(*(h.wait_ended() for h in handlers))
        self.live.clear()
        self.releasing.clear()
        if self.replica is not None:
            await self.replica.let_go()
        await self.worker.drain()

    async def _purge_loop(self) -> None:
        # Every replica purges; a run is deleted once (rows being purged elsewhere are skipped).
        interval = min(3600.0, max(1.0, self.retention_seconds / 10))
        while True:
            before = (datetime.now(timezone.utc) - timedelta(seconds=self.retention_seconds)).isoformat()
            try:
                while await self.worker.write(self.store.purge_finished, before) > 0:
                    pass
            except StoreError as exc:
                logger.warning("purging finished runs failed: %s", exc)
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ notifications
    def _on_record(self, handler_id: str, record: JournalRecord, sequence: int | None) -> None:
        if sequence is not None or isinstance(record, RunConcluded):
            self.hub.notify(handler_id)
        if isinstance(record, RunIdle):
            self.release_soon(handler_id, self.idle_release_seconds)

    def release_soon(self, handler_id: str, delay: float = 0.0) -> None:
        """Let go of the run after ``delay`` seconds if it only waits for an outside event then."""
        if self.stopping:
            return
        if delay > 0:
            self.tasks.later(delay, lambda: self._maybe_release(handler_id), f"workflows-server-release-{handler_id}")
        else:
            self.tasks.spawn(self._maybe_release(handler_id), f"workflows-server-release-{handler_id}")

    async def _maybe_release(self, handler_id: str) -> None:
        handler = self.live.get(handler_id)
        lock = self.locks.get(handler_id)
        if handler is None or self.stopping or (lock is not None and lock.locked()):
            return
        if self.replica is not None and handler_id in self.replica.mail:
            return
        # Under the run's lock: an answer that arrives meanwhile waits, then continues the
        # run from the epoch written here.
        async with self.lock(handler_id):
            if self.live.get(handler_id) is not handler:
                return
            # Moved first: the run's task ends as it is let go of, and that end is not a failure.
            del self.live[handler_id]
            self.releasing[handler_id] = handler
            try:
                released = await self.runtime.release(handler)
            except StoreError as exc:  # fenced out (another replica holds it) or the store failed
                logger.warning("run %s could not be let go of: %s", handler_id, exc)
                released = True
            if not released:
                del self.releasing[handler_id]
                self.live[handler_id] = handler
                return
            self.waiting += 1
            self.counts["released"] += 1

    def track(self, handler_id: str, handler: WorkflowHandler) -> None:
        """Hold ``handler`` as the live run of ``handler_id`` until its task ends."""
        self.live[handler_id] = handler

        def ended(_: WorkflowHandler) -> None:
            if self.releasing.get(handler_id) is handler:
                del self.releasing[handler_id]
                if self.replica is not None and not self.stopping:
                    self.tasks.spawn(self.replica.ended(handler_id, handler), f"workflows-server-ended-{handler_id}")
                return
            if self.live.get(handler_id) is not handler:
                return
            del self.live[handler_id]
            if self.stopping:
                return
            if self.replica is not None:
                self.tasks.spawn(self.replica.ended(handler_id, handler), f"workflows-server-ended-{handler_id}")
                return
            self.tasks.spawn(self._ended(handler_id, handler), f"workflows-server-ended-{handler_id}")

        handler.add_done_callback(ended)

    async def _ended(self, handler_id: str, handler: WorkflowHandler) -> None:
        async with self.lock(handler_id):
            row = await self.worker.read(self.store.get_handler, handler_id)
        if row is not None and row.status == "running" and row.run_id == handler.run_id:
            # The run ended without its end in the journal (its store write failed).
            error = handler.error
            await self.fail(handler_id, f"{type(error).__name__}: {error}" if error else "the run ended unrecorded")

    async def fail(self, handler_id: str, error: str) -> None:
        """Record that the run failed with ``error`` (an end the run could not record itself)."""
        await self._end(handler_id, "failed", error)

    async def _end(self, handler_id: str, status: str, error: str | None = None) -> None:
        row = await self.worker.read(self.store.get_handler, handler_id)
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
        self.hub.notify(handler_id)

    # ------------------------------------------------------------------ queries
    async def get(self, handler_id: str) -> HandlerRow:
        row = await self.worker.read(self.store.get_handler, handler_id)
        if row is None:
            raise RunNotFound(f"handler {handler_id!r} not found")
        return row

    def workflow_of(self, row: HandlerRow) -> Workflow:
        workflow = self.workflows.get(row.workflow_name)
        if workflow is None:
            raise RunConflict(f"handler {row.handler_id!r} belongs to workflow {row.workflow_name!r}, not served here")
        return workflow

    def lock(self, handler_id: str) -> _RunLock:
        """The run's lock: requests that change one run hold it, one at a time."""
        return _RunLock(self.locks, self.lock_users, handler_id)

    # ------------------------------------------------------------------ commands
    async def start_run(
        self, name: str, start_event: StartEvent, *, handler_id: str | None = None, context: dict[str, Any] | None = None
    ) -> HandlerRow:
        """Start a run now and record it; it goes on in the background."""
        workflow = self.workflows[name]
        handler_id = handler_id or uuid.uuid4().hex
        async with self.lock(handler_id):
            existing = await self.worker.read(self.store.get_handler, handler_id)
            if existing is not None and existing.status not in TERMINAL:
                raise RunConflict(f"handler {handler_id!r} is already running")
            if context:
                ctx: Context[Any] = Context.from_dict(workflow, context)
                resume_id = ctx.resume_id
                if resume_id is not None:
                    earlier = await self.worker.write(self.store.claim_resume, resume_id, handler_id)
                    if earlier is not None:
                        raise RunConflict(
                            f"this saved context (resume id {resume_id!r}) was already resumed by handler {earlier!r}: "
                            "resuming it again would run the work after its snapshot twice; resume each to_dict() "
                            "payload once, or send a context saved after that run"
                        )
            elif existing is not None:
                ctx = await self._next_run_context(workflow, existing)
            else:
                ctx = Context(workflow)
            serializer = workflow.serializer or JsonSerializer()
            row = HandlerRow(
                handler_id=handler_id, workflow_name=name, run_id=uuid.uuid4().hex[:16],
                start_event=serializer.serialize(start_event),
            )
            return await self._start(row, ctx, start_event, existing)

    async def start_from_context(self, name: str, ctx: Context[Any], *, handler_id: str | None = None) -> HandlerRow:
        """Start a new handler that continues ``ctx`` (a running context, e.g. a fork of another run).

        The run goes on from the work ``ctx`` holds, without a start event.
        """
        handler_id = handler_id or uuid.uuid4().hex
        async with self.lock(handler_id):
            if await self.worker.read(self.store.get_handler, handler_id) is not None:
                raise RunConflict(f"handler {handler_id!r} already exists")
            row = HandlerRow(handler_id=handler_id, workflow_name=name, run_id=uuid.uuid4().hex[:16])
            return await self._start(row, ctx, None, None)

    async def _start(
        self, row: HandlerRow, ctx: Context[Any], start_event: StartEvent | None, existing: HandlerRow | None
    ) -> HandlerRow:
        # The row is written before the run starts, so its first record has a row to go to.
        handler_id = row.handler_id
        base = ctx.to_dict()
        try:
            if existing is None:
                await self.worker.write(self.store.create_handler, row, base)
                epoch = 0
            else:
                await self.worker.write(self.store.restart_handler, row, base)
                epoch = existing.epoch + 1
        except HandlerExists:
            raise RunConflict(f"handler {handler_id!r} already exists") from None
        self.counts["started"] += 1
        if self.replica is not None:
            # The run is queued in the store; this replica runs it at once if it has room and
            # wins the claim, else whichever replica has room claims it.
            if self.replica.room() <= 0:
                return await self.get(handler_id)
            claim = await self.worker.write(
                self.replica.store.claim_one, handler_id, lease_seconds=self.replica.lease_seconds
            )
            if claim is None:
                return await self.get(handler_id)
            self.replica.counts["claimed"] += 1
        workflow = self.workflows[row.workflow_name]
        self.runtime.expect(row.run_id, handler_id, epoch)
        if start_event is None:  # a running context (a fork) goes on from its work
            handler = workflow.run(ctx=ctx, run_id=row.run_id)
        else:
            handler = workflow.run(ctx=ctx, start_event=start_event, run_id=row.run_id)
        self.track(handler_id, handler)
        return await self.get(handler_id)

    async def _next_run_context(self, workflow: Workflow, row: HandlerRow) -> Context[Any]:
        # A new run under a finished handler keeps its state and session.
        rebuilt = await self.runtime.rebuild(workflow, row)
        payload = rebuilt.ctx.to_dict() if rebuilt.ctx is not None else dict(rebuilt.payload or {})
        return Context.from_dict(workflow, idle_payload(payload))

    async def wait_finished(self, handler_id: str) -> HandlerRow:
        """Wait until the run has ended (it may wait for a human meanwhile) and return its row."""
        while True:
            changed = self.hub.future(handler_id)
            row = await self.get(handler_id)
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
        row = await self.get(handler_id)
        if row.status in TERMINAL:
            raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
        workflow = self.workflow_of(row)
        if self.replica is not None:
            handler = self.live.get(handler_id)
            if handler is None or handler.is_done() or handler_id not in self.replica.store.held():
                await self._send_shared(workflow, handler_id, event, step)
                return
        try:
            async with self.lock(handler_id):
                row = await self.get(handler_id)
                if row.status in TERMINAL:
                    raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
                handler = self.live.get(handler_id)
                if handler is not None and not handler.is_done():
                    handler.ctx.send_event(event, step)
                    await self.runtime.flushed(handler.run_id)
                    return
                old = self.releasing.get(handler_id)
                if old is not None:
                    # Its run id is free once the task that let go of it has ended.
                    await old.wait_ended()
                was_waiting = row.waiting_since is not None
                handler = await self.runtime.continue_run(workflow, handler_id, start_waiting=True)
                if handler is None:
                    raise RunConflict(f"handler {handler_id!r} has finished: it takes no more events")
                if was_waiting:
                    self.waiting -= 1
                self.counts["continued"] += 1
                self.track(handler_id, handler)
                await self.runtime.deliver(handler, event, step)
        finally:
            # A run continued for an event it then refused is let go of again.
            self.release_soon(handler_id)

    async def _send_shared(self, workflow: Workflow, handler_id: str, event: Event, step: str | None) -> None:
        # Wherever the run is (on another replica, or waiting in the store), the event goes to
        # its inbox: the owner delivers it, or whichever replica claims the waiting run.
        assert self.replica is not None
        if step is not None and step not in type(workflow)._get_steps_from_class():
            raise WorkflowRuntimeError(f"Step {step} does not exist")
        serialized = (workflow.serializer or JsonSerializer()).serialize(event)
        store = self.replica.store
        item = await self.worker.write(store.post, handler_id, kind="event", event=serialized, step=step)
        self.replica.kick()
        delivered = await self.replica.wait_delivered(handler_id, item, timeout=2 * self.replica.lease_seconds + 5)
        if not delivered:
            row = await self.get(handler_id)
            if row.status in TERMINAL and await self.worker.read(store.pending, item):
                await self.worker.write(store.ack, [item])
                raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
            # Still in the inbox: it is delivered when a replica takes the run.

    async def cancel(self, handler_id: str, *, purge: bool = False) -> str:
        """Cancel the run (if it has not ended) and, with ``purge``, delete it; returns the API status."""
        await self.get(handler_id)
        async with self.lock(handler_id):
            handler = self.live.get(handler_id)
            if handler is not None:
                await handler.cancel_run()
            row = await self.get(handler_id)
            if row.status == "running" and self.replica is not None:
                await self._cancel_shared(handler_id)
                row = await self.get(handler_id)
            if row.status == "running" and self.replica is None:
                # A run held by the store alone (or cancelled before its first record).
                if row.waiting_since is not None:
                    self.waiting -= 1
                await self._end(handler_id, "cancelled")
            if purge:
                await self.worker.write(self.store.delete_handler, handler_id)
                self.hub.notify(handler_id)
                return "deleted"
            return "cancelled"

    async def _cancel_shared(self, handler_id: str) -> None:
        assert self.replica is not None
        store = self.replica.store
        claim = await self.worker.write(store.claim_one, handler_id, lease_seconds=self.replica.lease_seconds)
        if claim is not None:
            # Free (queued or waiting) or its owner is gone: this replica records the end.
            try:
                await self._end(handler_id, "cancelled")
            finally:
                await self.worker.write(store.unclaim, handler_id)
            return
        # Held by a live replica: it cancels the run when it reads its inbox.
        item = await self.worker.write(store.post, handler_id, kind="cancel")
        await self.replica.wait_delivered(handler_id, item, timeout=2 * self.replica.lease_seconds + 5)
        deadline = asyncio.get_running_loop().time() + self.replica.lease_seconds + 5
        while (await self.get(handler_id)).status == "running" and asyncio.get_running_loop().time() < deadline:
            await self.changed(self.hub.future(handler_id), timeout=self.poll_seconds)

    def is_waiting(self, row: HandlerRow) -> bool:
        return row.status == "running" and row.waiting_since is not None and row.handler_id not in self.live


class _RunLock:
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


__all__ = ["Hub", "RunConflict", "RunManager", "RunNotFound", "Tasks", "only_waits"]
