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
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from workflows import Context, Workflow
from workflows.context.serializers import BaseSerializer, JsonSerializer
from workflows.events import (
    Event,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)
from workflows.handler import WorkflowHandler
from workflows.instrumentation.dispatcher import get_dispatcher
from workflows.plugins import Runtime
from workflows.context.serializers import known_types
from workflows.runtime.codec import decode_records, encode_record
from workflows.runtime.snapshot import workflow_types
from workflows.runtime.journal import (
    EventEmitted,
    JournalRecord,
    RunConcluded,
    RunIdle,
    RunInfo,
    RunStarted,
    StepFinished,
    StepQueued,
    StepStarted,
)
from workflows.runtime.replay import outcome
from workflows.runtime.stream import stream_event
from workflows_server.envelopes import envelope, is_internal
from workflows_server.store import (
    TERMINAL,
    HandlerRow,
    HandlerUpdate,
    NewStreamEvent,
    RunStore,
    SharedStore,
    StoreError,
    now_iso,
    open_store,
)

logger = logging.getLogger("workflows_server")

RecordListener = Callable[[str, JournalRecord, "int | None"], None]
"""Called after each record is stored: ``(handler_id, record, stream sequence or None)``."""

_STREAMED_FINISH = frozenset({"completed", "waiting", "failed"})


def streamed_entry(record: JournalRecord, concluded: bool) -> tuple[Event, bool] | None:
    """The stream event ``record`` puts on the run's stream (and whether it is internal), if any.

    Mirrors where the run loop streams records (``handler.stream_events()``), so the
    stored stream is the one a local reader sees; a test compares the two.
    """
    kind = type(record)
    if kind is EventEmitted:
        assert isinstance(record, EventEmitted)
        if not (
            record.unhandled
            or record.source == "stream"
            or (record.source == "return" and isinstance(record.event, InputRequiredEvent))
        ):
            return None
    elif kind is StepStarted:
        if concluded:
            return None
    elif kind is StepFinished:
        assert isinstance(record, StepFinished)
        if concluded or record.outcome not in _STREAMED_FINISH:
            return None
    elif kind is not StepQueued and kind is not RunIdle and kind is not RunConcluded:
        return None
    return stream_event(record)


def status_of(final: Event | None, error: BaseException | None = None) -> tuple[str, str | None]:
    """The handler status and error text a final event means."""
    if isinstance(final, WorkflowCancelledEvent):
        return "cancelled", None
    if isinstance(final, WorkflowTimedOutEvent):
        return "failed", str(error) if error is not None else f"timed out after {final.timeout} seconds"
    if isinstance(final, WorkflowFailedEvent):
        if error is None:
            error = final.exception if isinstance(final.exception, BaseException) else None
        return "failed", (str(error) or type(error).__name__) if error is not None else f"step {final.step_name} failed"
    return "completed", None


def conclusion(final: Event | None, error: BaseException | None = None) -> HandlerUpdate:
    status, text = status_of(final, error)
    return HandlerUpdate(
        status=status,  # type: ignore[arg-type]
        error=text,
        result=envelope(final) if status == "completed" and final is not None else None,
        completed_at=now_iso(),
    )


def idle_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A ``Context.to_dict()`` payload with its state and session but no run in it (a run starts from it)."""
    return {**payload, "is_running": False, "elapsed_alive": 0.0, "trace_context": {}, "workers": {}, "next_seq": 0}


def only_waits(payload: dict[str, Any]) -> bool:
    """Whether a ``Context.to_dict()`` payload is a run with no work but parked waits."""
    if not payload.get("is_running"):
        return False
    workers = payload.get("workers") or {}
    queued = any(saved.get("queue") for saved in workers.values())
    waits = any(saved.get("collected_waiters") for saved in workers.values())
    return waits and not queued


@dataclass(kw_only=True)
class Rebuilt:
    """A run read back from the store: a Context to continue, a final event, or neither (never began)."""

    ctx: Context[Any] | None = None
    final: StopEvent | None = None
    records: int = 0
    payload: dict[str, Any] | None = None
    """The base snapshot the run was rebuilt from."""


@dataclass(kw_only=True)
class _Expected:
    handler_id: str
    epoch: int
    begun: asyncio.Future[None]


class StoreJournal:
    """The journal writer of one run: each record, its stream event and its row change, in one write."""

    def __init__(self, runtime: DurableRuntime, run: RunInfo, ctx: Context[Any], expected: _Expected | None) -> None:
        self.runtime = runtime
        self.run = run
        self.ctx = ctx
        self.handler_id = expected.handler_id if expected is not None else run.run_id
        self.epoch = expected.epoch if expected is not None else 0
        self.registered = expected is not None
        self.serializer: BaseSerializer = JsonSerializer()
        self.concluded = False
        self.carrier_taken = False
        self.detached = False
        self.begun: asyncio.Future[None] = (
            expected.begun if expected is not None else asyncio.get_running_loop().create_future()
        )

    def _register(self, record: RunStarted) -> None:
        # A run started by a script: its row and base snapshot are made as it starts.
        payload = self.ctx.to_dict()
        if not record.resumed:
            payload = idle_payload(payload)
        workflow = record.workflow
        name = self.run.workflow_name
        if isinstance(workflow, Workflow):
            name = self.runtime.names.get(id(workflow), name)
        self.runtime.store.create_handler(
            HandlerRow(handler_id=self.handler_id, workflow_name=name, run_id=self.run.run_id), payload
        )
        store = self.runtime.store
        if isinstance(store, SharedStore):
            # Shared with server replicas: a script's run is claimed like theirs (no heartbeat:
            # a replica takes it over once ``lease_seconds`` pass, and this process is fenced).
            store.claim_one(self.handler_id, lease_seconds=self.runtime.lease_seconds)
        self.registered = True

    def write(self, record: JournalRecord) -> None:
        if self.detached:
            return
        store = self.runtime.store
        update: HandlerUpdate | None = None
        if isinstance(record, RunStarted):
            workflow = record.workflow
            if isinstance(workflow, Workflow) and workflow.serializer is not None:
                self.serializer = workflow.serializer
            if not self.registered:
                self._register(record)
            if record.start_event is not None:
                update = HandlerUpdate(clear_start_event=True)
        elif not self.carrier_taken:
            # The run's span exists once RunStarted was handled: keep its trace context,
            # so the run stays in its trace when it is continued from the store.
            self.carrier_taken = True
            dispatcher = get_dispatcher()
            carrier = dispatcher.inject(self.run, dispatcher.all_handlers())
            if carrier:
                update = HandlerUpdate(carrier=carrier)
        if isinstance(record, RunConcluded):
            update = conclusion(record.final_event, record.error)
        entry = streamed_entry(record, self.concluded)
        new_event = None
        if entry is not None:
            event, internal = entry
            new_event = NewStreamEvent(
                envelope=envelope(event), internal=internal or is_internal(type(event)),
                terminal=isinstance(event, StopEvent),
            )
        if isinstance(record, RunConcluded):
            self.concluded = True
        data = encode_record(record, self.serializer)
        sequence = store.append(self.handler_id, self.epoch, data, event=new_event, update=update)
        if isinstance(record, RunStarted) and not self.begun.done():
            self.begun.set_result(None)
        self.runtime.stored(self.handler_id, record, sequence)

    def close(self) -> None:
        if not self.begun.done():
            self.begun.set_result(None)
        self.runtime.forget(self.run.run_id, self)


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
        self.listeners: list[RecordListener] = []
        self.names: dict[int, str] = {}
        # Event classes a workflow takes beyond its own (the server's additional_events), by id(workflow).
        self.extra_types: dict[int, list[type]] = {}
        self._expected: dict[str, _Expected] = {}
        self._journals: dict[str, StoreJournal] = {}

    def __repr__(self) -> str:
        return f"DurableRuntime({self.store!r})"

    # ------------------------------------------------------------------ the Runtime hook
    def open_journal(self, run: RunInfo, ctx: Context[Any]) -> StoreJournal:
        journal = StoreJournal(self, run, ctx, self._expected.pop(run.run_id, None))
        self._journals[run.run_id] = journal
        return journal

    def expect(self, run_id: str, handler_id: str, epoch: int) -> asyncio.Future[None]:
        """Say that the next run with ``run_id`` writes to handler ``handler_id``'s ``epoch``.

        Returns a future set once that run has begun (its first record is written and
        its saved waits are armed again), or has ended without beginning.
        """
        begun: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._expected[run_id] = _Expected(handler_id=handler_id, epoch=epoch, begun=begun)
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

    # ------------------------------------------------------------------ reading runs back
    def unfinished(self, workflow_name: str | None = None) -> list[HandlerRow]:
        """Runs the store holds as running (in progress when their process died, or waiting)."""
        return self.store.list_handlers(status=["running"], workflow_name=[workflow_name] if workflow_name else None)

    def rebuild(self, workflow: Workflow, row: HandlerRow) -> Rebuilt:
        """The run as the store holds it: its Context rebuilt from the latest snapshot and journal
        (``ctx``; ``None`` for a run that never began), and its final event if the journal decided it."""
        snapshot = self.store.latest_snapshot(row.handler_id)
        if snapshot is None:
            raise StoreError(f"run {row.handler_id!r} has no snapshot in {self.store.url}")
        serializer = workflow.serializer or JsonSerializer()
        payload = dict(snapshot.payload)
        if not payload.get("trace_context") and row.carrier:
            payload["trace_context"] = dict(row.carrier)
        info = RunInfo(
            workflow_name=row.workflow_name, run_id=row.run_id, session_id=str(payload.get("session_id") or ""),
        )
        entries = self.store.journal(row.handler_id, epoch=snapshot.epoch)
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

    def finish(self, workflow: Workflow, row: HandlerRow, final: StopEvent) -> None:
        """Conclude a run whose journal already decided its outcome (a step returned the
        ``StopEvent``, and its process ended before the run concluded): the conclusion goes
        in the journal, the final event ends the stream and the row takes the result, in one
        write, as when the run concludes itself."""
        # Only a returned StopEvent decides a run without concluding it: every other end
        # (failure, timeout, cancel) is decided by RunConcluded itself.
        info = RunInfo(workflow_name=row.workflow_name, run_id=row.run_id, session_id="")
        record = RunConcluded(run=info, status="completed", final_event=final, result=final.result)
        sequence = self.store.append(
            row.handler_id, row.epoch, encode_record(record, workflow.serializer or JsonSerializer()),
            event=NewStreamEvent(envelope=envelope(final), internal=False, terminal=True),
            update=conclusion(final),
        )
        self.stored(row.handler_id, record, sequence)

    def stored(self, handler_id: str, record: JournalRecord, sequence: int | None) -> None:
        """Tell the listeners that ``record`` of run ``handler_id`` is stored (a failing one is logged)."""
        for listener in self.listeners:
            try:
                listener(handler_id, record, sequence)
            except Exception:
                logger.exception("a record listener failed on run %s", handler_id)

    def continue_run(self, workflow: Workflow, handler_id: str, *, start_waiting: bool = False) -> WorkflowHandler | None:
        """Continue a run of the store in this process; call it with an event loop running.

        Returns the run's handler, or ``None`` when there is nothing to run: the run
        had finished (its outcome is recorded if only the journal held it), or it only
        waits for an outside event (it stays in the store; ``send_event`` continues it)
        unless ``start_waiting``.
        """
        row = self.store.get_handler(handler_id)
        if row is None:
            raise KeyError(f"no run {handler_id!r} in {self.store.url}")
        if row.status in TERMINAL:
            return None
        store = self.store
        if isinstance(store, SharedStore) and handler_id not in store.held():
            if store.claim_one(handler_id, lease_seconds=self.lease_seconds) is None:
                raise StoreError(f"run {handler_id!r} is held by another replica ({row.owner}) in {store.url}")
        workflow.runtime = self
        rebuilt = self.rebuild(workflow, row)
        if rebuilt.final is not None:
            self.finish(workflow, row, rebuilt.final)
            return None
        if rebuilt.ctx is None:
            # The process died before the run's first record: start it again.
            # (or a queued run, on a replica, never began): start it, from its base snapshot's
            # state and session (what the request's context gave it).
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
        epoch = row.epoch
        if rebuilt.records:
            # The rebuilt run becomes the base of a new epoch: a later rebuild reads it
            # and the records after it, not the whole history again.
            epoch = self.store.begin_epoch(row.handler_id, payload, waiting=waiting)
        if waiting and not start_waiting:
            if row.waiting_since is None:
                self.store.set_waiting(row.handler_id, True)
            return None
        self.store.set_waiting(row.handler_id, False)
        self.expect(row.run_id, row.handler_id, epoch)
        return workflow.run(ctx=ctx, run_id=row.run_id)

    def release(self, handler: WorkflowHandler) -> bool:
        """Let go of a run that only waits for an outside event: it is kept by the store alone.

        Returns False, doing nothing, if the run has work (see ``handler.release_idle``).
        """
        journal = self._journals.get(handler.run_id)
        if journal is None or not handler.release_idle():
            return False
        self.forget(handler.run_id, journal)
        self.store.begin_epoch(journal.handler_id, handler.ctx.to_dict(), waiting=True)
        return True

    async def send_event(
        self, workflow: Workflow, handler_id: str, event: Event, step: str | None = None
    ) -> WorkflowHandler:
        """Deliver ``event`` to a run the store holds as waiting: continue the run, then send it.

        Returns once the event is written to the run's journal.
        """
        handler = self.continue_run(workflow, handler_id, start_waiting=True)
        if handler is None:
            raise KeyError(f"run {handler_id!r} is not waiting in {self.store.url}")
        begun = self.begun(handler.run_id)
        if begun is not None:
            # Sent once the run has begun, so the event is journaled before this returns.
            await asyncio.wait([begun, handler._run.driver], return_when=asyncio.FIRST_COMPLETED)
        handler.ctx.send_event(event, step)
        return handler

    def detach(self) -> None:
        """Stop writing for every live run of this process, as if it had died here.

        For a graceful shutdown: the runs' tasks can then be cancelled without the
        store recording them as cancelled, and the next process continues them.
        """
        for journal in list(self._journals.values()):
            journal.detached = True
        self._journals.clear()


__all__ = ["DurableRuntime", "Rebuilt", "idle_payload", "RecordListener", "StoreJournal", "conclusion", "only_waits", "status_of", "streamed_entry"]
