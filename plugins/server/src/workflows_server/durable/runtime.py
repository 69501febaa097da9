"""``DurableRuntime``: runs whose every transition is written to a ``RunStore`` before it happens.

Give it to a workflow (``Workflow(runtime=DurableRuntime("sqlite:///runs.db"))``) and
each run keeps, in the store, its row, a base snapshot, its journal and its stream.
When the process dies, ``continue_run(workflow, run_id)`` in a new process rebuilds the
run (``Context.from_journal``) and continues it: a step whose end was written never
runs again; a step that was running runs again from its start with the next attempt
number (``ctx.retry_info().retry_number``), so steps with side effects can be made
idempotent. A run that only waits for an outside event can be let go of
(``release``): it then lives in the store alone until ``send_event`` brings it back.

The workflow server is built on this runtime; a script can use it directly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from workflows import Context, Workflow
from workflows.context.serializers import BaseSerializer, JsonSerializer, known_types
from workflows.events import Event, StartEvent, StopEvent
from workflows.handler import WorkflowHandler
from workflows.plugins import Runtime
from workflows.runtime.codec import decode_records, encode_record
from workflows.runtime.journal import JournalRecord, RunConcluded, RunInfo
from workflows.runtime.replay import outcome
from workflows.runtime.snapshot import workflow_types
from workflows_server.durable.envelopes import envelope
from workflows_server.durable.journal import (
    Expected,
    RecordListener,
    StoreJournal,
    answers_humans,
    conclusion,
    idle,
    idle_payload,
    only_waits,
    question_of,
    settle,
)
from workflows_server.store import TERMINAL, Append, HandlerRow, NewStreamEvent, RunStore, SharedStore, StoreError, open_store
from workflows_server.store.worker import StoreWorker, settle_future

logger = logging.getLogger("workflows_server")


@dataclass(kw_only=True)
class Rebuilt:
    """A run read back from the store: a Context to continue, a final event, or neither (never began)."""

    ctx: Context[Any] | None = None
    final: StopEvent | None = None
    records: int = 0
    payload: dict[str, Any] | None = None
    """The base snapshot the run was rebuilt from."""


class DurableRuntime(Runtime):
    """A runtime that keeps every run in a ``RunStore`` and continues runs from it.

    ``store`` is a ``RunStore``, a store URL (``sqlite:///path/runs.db``) or ``None``
    for the default file ``./.workflows/runs.db``. A run's id (``run(run_id=...)``) is
    its id in the store.
    """

    lease_seconds: float = 30.0
    """On a shared store (PostgreSQL): the lease of the claims this runtime takes for a script's runs."""

    def __init__(self, store: RunStore | str | Path | None = None) -> None:
        self.store: RunStore = store if isinstance(store, RunStore) else open_store(store)
        self.worker = StoreWorker(self.store)
        """Every store call of this runtime runs on the worker's thread, never on the event loop."""
        self.listeners: list[RecordListener] = []
        self.names: dict[int, str] = {}
        # Event classes a workflow takes beyond its own (the server's additional_events), by id(workflow).
        self.extra_types: dict[int, list[type]] = {}
        self._expected: dict[str, Expected] = {}
        self._journals: dict[str, StoreJournal] = {}
        self.on_stranded: Callable[[str, str, Exception], None] | None = None
        """Set by a server: called ``(handler_id, run_id, error)`` when a run's write failed (see ``strand``)."""

    def __repr__(self) -> str:
        return f"DurableRuntime({self.store!r})"

    # ------------------------------------------------------------------ the Runtime hook
    def open_journal(self, run: RunInfo, ctx: Context[Any]) -> StoreJournal:
        journal = StoreJournal(self, run, ctx, self._expected.pop(run.run_id, None))
        self._journals[run.run_id] = journal
        return journal

    def expect(self, run_id: str, handler_id: str, epoch: int, *, question: bool = False) -> asyncio.Future[None]:
        """Say that the next run with ``run_id`` writes to handler ``handler_id``'s ``epoch``
        (``question``: it left a question to the outside unanswered, see ``journal.asks``).

        Returns a future set once that run has begun (its first record is stored and
        its saved waits are armed again), or has ended without beginning.
        """
        begun: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._expected[run_id] = Expected(handler_id=handler_id, epoch=epoch, begun=begun, question=question)
        return begun

    def begun(self, run_id: str) -> asyncio.Future[None] | None:
        """The future of ``expect`` for a run that has not begun yet, else of its live journal."""
        expected = self._expected.get(run_id)
        if expected is not None:
            return expected.begun
        journal = self._journals.get(run_id)
        return journal.begun if journal is not None else None

    def journal_of(self, run_id: str) -> StoreJournal | None:
        """The writer of the live run ``run_id`` (the latest one opened)."""
        return self._journals.get(run_id)

    def forget(self, run_id: str, journal: StoreJournal | None = None) -> None:
        if journal is None or self._journals.get(run_id) is journal:
            self._journals.pop(run_id, None)
        if journal is not None:
            self.worker.forget(journal)

    def strand(self, journal: StoreJournal, error: Exception) -> bool:
        """A write of ``journal``'s run failed: with ``on_stranded`` set, stop writing for the run and
        hand it to the server, which abandons it (as a graceful stop does) and continues it from its
        last durable record once the store writes again. Returns False without ``on_stranded`` (a
        script's run then fails with ``error``)."""
        if self.on_stranded is None:
            return False
        journal.detached = True
        self.forget(journal.run.run_id, journal)
        self.on_stranded(journal.handler_id, journal.run.run_id, error)
        return True

    async def flushed(self, run_id: str) -> None:
        """Wait until the records the live run ``run_id`` wrote so far are stored."""
        journal = self._journals.get(run_id)
        if journal is not None:
            await journal.flushed()

    # ------------------------------------------------------------------ reading runs back
    async def unfinished(self, workflow_name: str | None = None) -> list[HandlerRow]:
        """Runs the store holds as running (in progress when their process died, or waiting)."""
        return await self.worker.read(
            self.store.list_handlers, status=["running"], workflow_name=[workflow_name] if workflow_name else None
        )

    async def rebuild(self, workflow: Workflow, row: HandlerRow) -> Rebuilt:
        """The run as the store holds it: its Context rebuilt from the latest snapshot and journal
        (``ctx``; ``None`` for a run that never began), and its final event if the journal decided it."""
        snapshot = await self.worker.read(self.store.latest_snapshot, row.handler_id)
        if snapshot is None:
            raise StoreError(f"run {row.handler_id!r} has no snapshot in {self.store.url}")
        entries = await self.worker.read(self.store.journal, row.handler_id, epoch=snapshot.epoch)
        serializer = workflow.serializer or JsonSerializer()
        payload = dict(snapshot.payload)
        if not payload.get("trace_context") and row.carrier:
            payload["trace_context"] = dict(row.carrier)
        info = RunInfo(
            workflow_name=row.workflow_name, run_id=row.run_id, session_id=str(payload.get("session_id") or ""),
        )
        with known_types(self.extra_types.get(id(workflow), ())):
            records = decode_records([e.record for e in entries], serializer, info, workflow)
        final = outcome(records)
        if not records and not payload.get("is_running"):
            return Rebuilt(payload=payload)
        with known_types(self.extra_types.get(id(workflow), ())):
            ctx = Context.from_journal(workflow, payload, records)
        if final is not None:
            final = final if isinstance(final, StopEvent) else StopEvent(result=final)
        return Rebuilt(ctx=ctx, final=final, records=len(records), payload=payload)

    def start_event_of(self, workflow: Workflow, row: HandlerRow) -> StartEvent:
        if row.start_event is None:
            raise StoreError(f"run {row.handler_id!r} never started and its start event was not kept")
        event = self.event_of(workflow, row.start_event)
        if not isinstance(event, StartEvent):
            raise StoreError(f"run {row.handler_id!r} kept a {type(event).__name__} as its start event")
        return event

    def event_of(self, workflow: Workflow, text: str) -> Event:
        """An event serialized by ``workflow``'s serializer, read back with the classes ``workflow`` knows."""
        with known_types([*workflow_types(workflow), *self.extra_types.get(id(workflow), ())]):
            return (workflow.serializer or JsonSerializer()).deserialize(text)

    async def end(
        self, handler_id: str, epoch: int, record: RunConcluded, final: Event, *,
        serializer: BaseSerializer | None = None, error: BaseException | None = None,
    ) -> None:
        """Write the end of a run that does not end itself, as a run's own conclusion is written:
        its ``RunConcluded`` record, the final event closing its stream and its row's outcome, in
        one write. This is how every end the server decides is recorded (a run decided by its
        journal, cancelled while the store alone held it, failed without its end recorded)."""
        written: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.worker.append(
            Append(
                handler_id=handler_id, epoch=epoch, record=encode_record(record, serializer or JsonSerializer()),
                event=NewStreamEvent(envelope=envelope(final), internal=False, terminal=True),
                update=conclusion(final, error),
            ),
            chain=record, settle=functools.partial(settle_future, written),
        )
        try:
            sequence = await written
        finally:
            self.worker.forget(record)
        self.stored(handler_id, record, sequence)

    async def finish(self, workflow: Workflow, row: HandlerRow, final: StopEvent) -> None:
        """Conclude a run whose journal already decided its outcome (a step returned the
        ``StopEvent``, and its process ended before the run concluded)."""
        # Only a returned StopEvent decides a run without concluding it: every other end
        # (failure, timeout, cancel) is decided by RunConcluded itself.
        info = RunInfo(workflow_name=row.workflow_name, run_id=row.run_id, session_id="")
        record = RunConcluded(run=info, status="completed", final_event=final, result=final.result)
        await self.end(row.handler_id, row.epoch, record, final, serializer=workflow.serializer)

    def stored(self, handler_id: str, record: JournalRecord, sequence: int | None) -> None:
        """Tell the listeners that ``record`` of run ``handler_id`` is stored (a failing one is logged)."""
        for listener in self.listeners:
            try:
                listener(handler_id, record, sequence)
            except Exception:
                logger.exception("a record listener failed on run %s", handler_id)

    async def continue_run(
        self, workflow: Workflow, handler_id: str, *, start_waiting: bool = False
    ) -> WorkflowHandler | None:
        """Continue a run of the store in this process.

        Returns the run's handler, or ``None`` when there is nothing to run: the run
        had finished (its outcome is recorded if only the journal held it), or it only
        waits for an outside event (it stays in the store; ``send_event`` continues it)
        unless ``start_waiting``.
        """
        store = self.store
        row = await self.worker.read(store.get_handler, handler_id)
        if row is None:
            raise KeyError(f"no run {handler_id!r} in {store.url}")
        if row.status in TERMINAL:
            return None
        if isinstance(store, SharedStore) and handler_id not in store.held():
            claim = await self.worker.write(store.claim_one, handler_id, lease_seconds=self.lease_seconds)
            if claim is None:
                raise StoreError(f"run {handler_id!r} is held by another replica ({row.owner}) in {store.url}")
        workflow.runtime = self
        rebuilt = await self.rebuild(workflow, row)
        if rebuilt.final is not None:
            await self.finish(workflow, row, rebuilt.final)
            return None
        if rebuilt.ctx is None:
            # The process died before the run's first record (or a queued run, on a
            # replica, never began): start it, from its base snapshot's state and session
            # (what the request's context gave it).
            self.expect(row.run_id, row.handler_id, row.epoch)
            start_event = self.start_event_of(workflow, row)
            base = rebuilt.payload
            if base and (base.get("state") or base.get("session_id")):
                with known_types(self.extra_types.get(id(workflow), ())):
                    fresh: Context[Any] = Context.from_dict(workflow, idle_payload(base))
                return workflow.run(ctx=fresh, start_event=start_event, run_id=row.run_id)
            return workflow.run(start_event=start_event, run_id=row.run_id)
        ctx = rebuilt.ctx
        payload = ctx.to_dict()
        waiting = only_waits(payload)
        question = False
        if idle(payload):
            # No work left: a question a step asked (and nobody answered) is a wait too.
            entries = await self.worker.read(store.journal, row.handler_id)
            question = question_of([e.record for e in entries], answers_humans(workflow))
            waiting = waiting or question
        epoch = row.epoch
        if rebuilt.records:
            # The rebuilt run becomes the base of a new epoch: a later rebuild reads it
            # and the records after it, not the whole history again.
            epoch = await self.worker.write(store.begin_epoch, row.handler_id, payload, waiting=waiting)
        if waiting and not start_waiting:
            if row.waiting_since is None:
                await self.worker.write(store.set_waiting, row.handler_id, True)
            return None
        await self.worker.write(store.set_waiting, row.handler_id, False)
        self.expect(row.run_id, row.handler_id, epoch, question=question)
        return workflow.run(ctx=ctx, run_id=row.run_id)

    async def release(self, handler: WorkflowHandler) -> bool:
        """Let go of a run that only waits for an outside event (a parked wait, or a question a step
        asked that is not answered yet): it is kept by the store alone.

        Returns False, doing nothing, if the run has work (see ``handler.release_idle``).
        """
        journal = self._journals.get(handler.run_id)
        if journal is None or not handler.release_idle(awaiting_input=journal.question):
            return False
        self.forget(handler.run_id, journal)
        # Queued after the run's last records: the new epoch's base follows them.
        await self.worker.write(self.store.begin_epoch, journal.handler_id, handler.ctx.to_dict(), waiting=True)
        return True

    async def send_event(
        self, workflow: Workflow, handler_id: str, event: Event, step: str | None = None
    ) -> WorkflowHandler:
        """Deliver ``event`` to a run the store holds as waiting: continue the run, then send it.

        Returns once the event is written to the run's journal.
        """
        handler = await self.continue_run(workflow, handler_id, start_waiting=True)
        if handler is None:
            raise KeyError(f"run {handler_id!r} is not waiting in {self.store.url}")
        await self.deliver(handler, event, step)
        return handler

    async def until_begun(self, handler: WorkflowHandler) -> None:
        """Wait until the run of ``handler`` has begun (its first record stored, its saved waits armed
        again), or has ended without beginning."""
        begun = self.begun(handler.run_id)
        if begun is not None and not begun.done():
            handler.add_done_callback(lambda _: settle(begun))
            # Shielded: a request cancelled while it waits leaves the run's future to the others.
            await asyncio.shield(begun)

    async def deliver(
        self, handler: WorkflowHandler, event: Event, step: str | None = None, *, check: Callable[[], None] | None = None
    ) -> None:
        """Send ``event`` to a run of this process once it has begun; returns once it is journaled.

        ``check`` is called once the run has begun, before the event is sent: it raises to refuse it.
        """
        # Sent once the run has begun (its waits armed again), so the event is journaled
        # before this returns; a run that ends first cannot take it.
        await self.until_begun(handler)
        if check is not None:
            check()
        handler.ctx.send_event(event, step)
        await self.flushed(handler.run_id)

    def detach(self) -> None:
        """Stop writing for every live run of this process, as if it had died here.

        For a graceful shutdown: the runs' tasks can then be cancelled without the
        store recording them as cancelled, and the next process continues them.
        """
        for journal in list(self._journals.values()):
            journal.detached = True
        self._journals.clear()

    async def aclose(self) -> None:
        """Finish the queued writes and close the store."""
        await self.worker.aclose()


__all__ = ["DurableRuntime", "Rebuilt"]
