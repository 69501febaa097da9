"""``RunService``: what the HTTP routes and the debugger do to runs: start, read, wait, answer, cancel.

Everything here runs on the server's event loop; store calls go to the store's worker
thread (``runtime.worker``) and are awaited. The runs held in memory are ``live``
(``LiveRuns``); where a run goes (this process, or whichever replica claims it) is the
``placement``'s say. Requests that change one run hold the run's lock, so an answer to
a run that is being let go of either reaches it before, or continues it from the store
afterwards (never "no active run").
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from workflows import Context, Workflow
from workflows.context.serializers import JsonSerializer
from workflows.events import Event, HumanResponseEvent, StartEvent
from workflows.handler import WorkflowHandler
from workflows.runtime.ids import random_id
from workflows_server.durable import DurableRuntime
from workflows_server.durable.journal import idle_payload
from workflows_server.runs.errors import RunConflict, RunNotFound, StoreUnavailable
from workflows_server.runs.health import StoreHealth
from workflows_server.runs.hub import Hub, ended_key
from workflows_server.runs.live import LiveRuns
from workflows_server.runs.local import LocalPlacement
from workflows_server.runs.placement import Placement
from workflows_server.runs.replicas import ReplicaPlacement
from workflows_server.store import TERMINAL, HandlerExists, HandlerRow, SharedStore, StoreError

logger = logging.getLogger("workflows_server")


class RunService:
    """The runs of the workflows a server serves, kept in ``runtime.store``; see the module docstring."""

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
        shutdown_seconds: float = 8.0,
    ):
        self.runtime = runtime
        self.store = runtime.store
        self.worker = runtime.worker
        self.workflows = workflows
        self.retention_seconds = retention_seconds
        self.live = LiveRuns(runtime, idle_release_seconds=idle_release_seconds)
        self.replica: ReplicaPlacement | None = None
        """Set on a shared store (PostgreSQL): this process's part among the replicas."""
        self.placement: Placement
        if isinstance(self.store, SharedStore):
            self.replica = self.placement = ReplicaPlacement(
                self.live, workflows, self.store, lease_seconds=lease_seconds, max_runs=max_runs,
                poll_seconds=poll_seconds,
            )
        else:
            self.placement = LocalPlacement(self.live, workflows)
        self.live.on_ended = self.placement.ended
        self.live.may_release = self.placement.may_release
        self.health = StoreHealth(self.store, self.worker, self.live.tasks, self._recover_stranded)
        """Whether the store writes now; recovers the runs a failed write stranded (``runs.health``)."""
        # Both hooks: the worker hears every failed write, a stranded run also the failed reads
        # (a run continued from an unreadable journal), which the health must hear to retry it.
        self.live.on_store_failed = self.worker.on_failure = self.health.failed
        self.shutdown_seconds = shutdown_seconds

    @property
    def hub(self) -> Hub:
        return self.live.hub

    @property
    def counts(self) -> Counter[str]:
        return self.live.counts

    @property
    def waiting(self) -> int:
        """Runs the store alone holds, waiting for an outside event (as this process counted them)."""
        return self.live.waiting

    # ------------------------------------------------------------------ lifetime
    async def start(self) -> None:
        """Take up the runs the store holds as running (after a crash or a restart)."""
        if self.retention_seconds > 0:
            self.live.tasks.spawn(self._purge_loop(), "workflows-server-retention")
        await self.placement.start()

    async def stop(self) -> None:
        """Let go of live runs without recording an end: the next server continues them.

        Bounded by ``shutdown_seconds`` whatever the store's state: writes still queued
        then are given up (their runs continue from their last durable record).
        """
        self.live.stopping = True
        try:
            await asyncio.wait_for(self._stop(), timeout=self.shutdown_seconds)
        except asyncio.TimeoutError:
            logger.warning("the store %s did not finish its writes within %ss of the stop; they are given up",
                           self.store.url, self.shutdown_seconds)

    async def _stop(self) -> None:
        await self.placement.stop()
        await self.live.close()
        await self.placement.let_go()
        await self.worker.drain()

    async def _recover_stranded(self) -> bool:
        # The store writes again (a probe succeeded): each stranded run is continued from
        # its last durable record, or the end it could not record is recorded. Returns
        # whether none is left; a StoreError (the store failed again) keeps the rest.
        live = self.live
        for handler_id, stranded in list(live.stranded.items()):
            async with live.lock(handler_id):
                if live.stranded.get(handler_id) is not stranded:
                    continue
                del live.stranded[handler_id]
                try:
                    await self.placement.recover(handler_id, stranded)
                except StoreError:
                    live.stranded.setdefault(handler_id, stranded)
                    raise
            self.hub.notify(handler_id)
        return not live.stranded

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

    async def wait_finished(self, handler_id: str) -> HandlerRow:
        """Wait until the run has ended (it may wait for a human meanwhile) and return its row."""
        handler = self.live.handlers.get(handler_id)
        if handler is not None:
            # A run of this process: its end is stored by the time its task ends (the
            # usual case is then one read); the loop below covers the rest.
            await handler.wait_ended()
        while True:
            # Woken when its status changes, not at each event of its stream.
            changed = self.hub.future(ended_key(handler_id))
            row = await self.get(handler_id)
            if row.status in TERMINAL:
                return row
            stranded = self.live.stranded.get(handler_id)
            if stranded is not None:
                # Answered now rather than when the store writes again: the run goes on then.
                raise StoreUnavailable(stranded.error)
            await self.changed(changed)

    async def changed(self, future: asyncio.Future[None], timeout: float | None = None) -> bool:
        """Wait for a hub future; with replicas at most ``poll_seconds`` (a notification can be
        missed while the LISTEN connection reconnects). Returns whether the future was set."""
        poll = self.placement.poll_seconds
        if poll is not None:
            timeout = poll if timeout is None else min(timeout, poll)
        if timeout is None:
            await future
            return True
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # ------------------------------------------------------------------ commands
    async def start_run(
        self, name: str, start_event: StartEvent, *, handler_id: str | None = None, context: dict[str, Any] | None = None
    ) -> HandlerRow:
        """Start a run now and record it; it goes on in the background."""
        workflow = self.workflows[name]
        chosen = handler_id is not None
        handler_id = handler_id or random_id()
        async with self.live.lock(handler_id):
            # A fresh random id names no run yet: only a client's own id is looked up.
            existing = await self.worker.read(self.store.get_handler, handler_id) if chosen else None
            if existing is not None and existing.status not in TERMINAL:
                raise RunConflict(f"handler {handler_id!r} is already running (a run of workflow {existing.workflow_name!r})")
            if existing is not None and existing.workflow_name != name:
                raise RunConflict(
                    f"handler id {handler_id!r} belongs to workflow {existing.workflow_name!r}, not {name!r}: a handler "
                    "id names one workflow forever; choose another id (or omit handler_id for a fresh one)"
                )
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
                handler_id=handler_id, workflow_name=name, run_id=random_id()[:16],
                start_event=serializer.serialize(start_event),
            )
            return await self._start(row, ctx, start_event, existing)

    async def start_from_context(self, name: str, ctx: Context[Any], *, handler_id: str | None = None) -> HandlerRow:
        """Start a new handler that continues ``ctx`` (a running context, e.g. a fork of another run).

        The run goes on from the work ``ctx`` holds, without a start event.
        """
        handler_id = handler_id or random_id()
        async with self.live.lock(handler_id):
            if await self.worker.read(self.store.get_handler, handler_id) is not None:
                raise RunConflict(f"handler {handler_id!r} already exists")
            row = HandlerRow(handler_id=handler_id, workflow_name=name, run_id=random_id()[:16])
            return await self._start(row, ctx, None, None)

    async def _start(
        self, row: HandlerRow, ctx: Context[Any], start_event: StartEvent | None, existing: HandlerRow | None
    ) -> HandlerRow:
        # The row is written before the run starts, so its first record has a row to go to.
        handler_id = row.handler_id
        base = ctx.to_dict()
        try:
            if existing is None:
                here = await self.placement.create(row, base)
                epoch = 0
            else:
                await self.worker.write(self.store.restart_handler, row, base)
                epoch = existing.epoch + 1
                here = await self.placement.run_here(handler_id)
        except HandlerExists:
            raise RunConflict(f"handler {handler_id!r} already exists") from None
        self.counts["started"] += 1
        if here:
            workflow = self.workflows[row.workflow_name]
            self.runtime.expect(row.run_id, handler_id, epoch)
            if start_event is None:  # a running context (a fork) goes on from its work
                handler = workflow.run(ctx=ctx, run_id=row.run_id)
            else:
                handler = workflow.run(ctx=ctx, start_event=start_event, run_id=row.run_id)
            self.live.track(handler_id, handler)
        # A new run's row is the one just written; a restarted one's was rewritten by the store.
        return row if existing is None else await self.get(handler_id)

    async def _next_run_context(self, workflow: Workflow, row: HandlerRow) -> Context[Any]:
        # A new run under a finished handler keeps its state and session.
        rebuilt = await self.runtime.rebuild(workflow, row)
        payload = rebuilt.ctx.to_dict() if rebuilt.ctx is not None else dict(rebuilt.payload or {})
        return Context.from_dict(workflow, idle_payload(payload))

    async def send(self, handler_id: str, event: Event, step: str | None = None) -> None:
        """Deliver ``event`` to a running or waiting run; returns once the event is journaled."""
        row = await self.get(handler_id)
        if row.status in TERMINAL:
            raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
        workflow = self.workflow_of(row)
        if not self.placement.holds(handler_id) and self.replica is not None:
            await self.placement.send_elsewhere(handler_id, event, step)
            return
        live = self.live
        try:
            async with live.lock(handler_id):
                row = await self.get(handler_id)
                if row.status in TERMINAL:
                    raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
                handler = live.handlers.get(handler_id)
                if handler is not None and not handler.is_done():
                    self._check_awaited(handler, event)
                    handler.ctx.send_event(event, step)
                    await self.runtime.flushed(handler.run_id)
                    return
                old = live.releasing.get(handler_id)
                if old is not None:
                    # Its run id is free once the task that let go of it has ended.
                    await old.wait_ended()
                was_waiting = row.waiting_since is not None
                handler = await self.runtime.continue_run(workflow, handler_id, start_waiting=True)
                if handler is None:
                    raise RunConflict(f"handler {handler_id!r} has finished: it takes no more events")
                if was_waiting:
                    live.waiting -= 1
                self.counts["continued"] += 1
                live.track(handler_id, handler)
                await self.runtime.deliver(handler, event, step, check=lambda: self._check_awaited(handler, event))
        finally:
            # A run continued for an event it then refused is let go of again.
            live.release_soon(handler_id)

    def _check_awaited(self, handler: WorkflowHandler, event: Event) -> None:
        """Refuse an answer (a ``HumanResponseEvent``) the live run no longer waits for: its question
        was answered already, so a second answer would be dropped or run the answering step again."""
        if not isinstance(event, HumanResponseEvent):
            return
        journal = self.runtime.journal_of(handler.run_id)
        if journal is not None and journal.question:
            return  # a step asked and nobody answered yet
        workers = handler.ctx.to_dict().get("workers") or {}
        awaited = {w.get("event_type") for saved in workers.values() for w in saved.get("collected_waiters") or ()}
        if awaited & {f"{cls.__module__}.{cls.__name__}" for cls in type(event).__mro__}:
            return  # a parked ctx.wait_for_event takes it
        raise RunConflict(
            f"run {handler.run_id!r} is not waiting for a {type(event).__name__}: its question was answered "
            "already (or it asked none)"
        )

    async def cancel(self, handler_id: str, *, purge: bool = False) -> str:
        """Cancel the run and, with ``purge``, delete it; returns the API status.

        A run that has already ended is not cancelled: ``RunConflict`` naming its status
        (with ``purge`` it is deleted all the same).
        """
        await self.get(handler_id)
        async with self.live.lock(handler_id):
            row = await self.get(handler_id)
            if row.status in TERMINAL and not purge:
                raise RunConflict(f"handler {handler_id!r} has already {row.status}: there is nothing to cancel")
            handler = self.live.handlers.get(handler_id)
            if handler is not None:
                await handler.cancel_run()
            row = await self.get(handler_id)
            if row.status == "running":
                await self.placement.cancel_unheld(handler_id)
            if purge:
                await self.worker.write(self.store.delete_handler, handler_id)
                self.hub.notify_ended(handler_id)
                return "deleted"
            return "cancelled"


__all__ = ["RunService"]
