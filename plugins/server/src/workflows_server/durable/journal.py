"""``StoreJournal``: a run's journal writer on a ``RunStore``, and what a record means for the stored run.

Each record is queued on the store's worker (``StoreWorker``) with the stream event and
the row change it implies (``streamed_entry``, ``conclusion``), and written with every
other record ready at the same moment; the run awaits ``durable()`` before it acts
(``workflows.runtime.journal.BatchingJournalWriter``).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

from workflows import Context, Workflow
from workflows.context.serializers import BaseSerializer, JsonSerializer
from workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)
from workflows.instrumentation.dispatcher import get_dispatcher
from workflows.runtime.codec import encode_record
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
from workflows.runtime.stream import stream_event
from workflows_server.durable.envelopes import envelope, is_internal
from workflows_server.store import Append, HandlerRow, HandlerUpdate, NewStreamEvent, RunStore, SharedStore, StoreError, now_iso
from workflows_server.store.worker import StoreWorker

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


def idle(payload: dict[str, Any]) -> bool:
    """Whether a ``Context.to_dict()`` payload is a running run with no queued work."""
    workers = payload.get("workers") or {}
    return bool(payload.get("is_running")) and not any(saved.get("queue") for saved in workers.values())


def answers_humans(workflow: Workflow) -> bool:
    """Whether a step of ``workflow`` takes a ``HumanResponseEvent`` (an answer to the run's questions)."""
    return any(
        isinstance(t, type) and issubclass(t, HumanResponseEvent)
        for spec in workflow.step_specs.values() for t in spec.config.accepted_events
    )


def asks(record: dict[str, Any], answerable: bool) -> bool | None:
    """What an encoded journal record says of the run's question to the outside.

    ``True``: a step asked (it returned an ``InputRequiredEvent``, or, in a workflow that
    takes a ``HumanResponseEvent`` (``answerable``), an event no step takes); ``False``:
    an event from outside was taken (the question, if any, is answered); ``None``:
    neither. A run with no work left whose last word is ``True`` only waits for its
    answer, as a parked ``ctx.wait_for_event`` does.
    """
    if record.get("kind") != "EventEmitted":
        return None
    source = record.get("source")
    taken = record.get("targets") or record.get("woken") or record.get("collected")
    if source == "return" and not taken:
        # Not unhandled and not taken: an InputRequiredEvent (a StopEvent ends the run).
        return not record.get("unhandled") or answerable
    if source == "external" and taken:
        return False
    return None


def question_of(records: list[dict[str, Any]], answerable: bool) -> bool:
    """Whether the run of these encoded records (oldest first) left a question unanswered."""
    for record in reversed(records):
        said = asks(record, answerable)
        if said is not None:
            return said
    return False


@dataclass(kw_only=True)
class Expected:
    """Where the next run with a given run id writes (see ``DurableRuntime.expect``)."""

    handler_id: str
    epoch: int
    begun: asyncio.Future[None]
    question: bool = False
    """The run left a question to the outside unanswered (see ``asks``)."""


class JournalOwner(Protocol):
    """What a ``StoreJournal`` needs of its runtime (``DurableRuntime``)."""

    store: RunStore
    worker: StoreWorker
    names: dict[int, str]
    lease_seconds: float

    def stored(self, handler_id: str, record: JournalRecord, sequence: int | None) -> None: ...

    def forget(self, run_id: str, journal: StoreJournal | None = None) -> None: ...

    def strand(self, journal: StoreJournal, error: Exception) -> bool: ...


class StoreJournal:
    """The journal writer of one run: each record, its stream event and its row change, in one write.

    Records are queued on the store's worker (``StoreWorker``) and written with every
    other record ready at the same moment; the run awaits ``durable()`` before it acts
    (``workflows.runtime.journal.BatchingJournalWriter``).
    """

    def __init__(self, runtime: JournalOwner, run: RunInfo, ctx: Context[Any], expected: Expected | None) -> None:
        self.runtime = runtime
        self.run = run
        self.ctx = ctx
        self.handler_id = expected.handler_id if expected is not None else run.run_id
        self.epoch = expected.epoch if expected is not None else 0
        self.registered = expected is not None
        self.serializer: BaseSerializer = JsonSerializer()
        self.concluded = False
        self.question = expected.question if expected is not None else False
        """The run asked the outside for input that is not answered yet (see ``asks``)."""
        self.answerable = False
        self.carrier_taken = False
        self.detached = False
        self.stranded = False
        """A write failed and the runtime took the run over (see ``DurableRuntime.strand``): it acts no more."""
        self.last: asyncio.Future[Any] | None = None
        """The latest write queued for this run."""
        self.failure: Exception | None = None
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
        store = self.runtime.store
        row = HandlerRow(handler_id=self.handler_id, workflow_name=name, run_id=self.run.run_id)
        self._track(self.runtime.worker.write(store.create_handler, row, payload))
        if isinstance(store, SharedStore):
            # Shared with server replicas: a script's run is claimed like theirs (no heartbeat:
            # a replica takes it over once ``lease_seconds`` pass, and this process is fenced).
            self._track(self.runtime.worker.write(store.claim_one, self.handler_id, lease_seconds=self.runtime.lease_seconds))
        self.registered = True

    def write(self, record: JournalRecord) -> None:
        if self.detached:
            return
        if self.failure is not None:
            raise self.failure
        update: HandlerUpdate | None = None
        if isinstance(record, RunStarted):
            workflow = record.workflow
            if isinstance(workflow, Workflow):
                self.answerable = answers_humans(workflow)
                if workflow.serializer is not None:
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
        encoded = encode_record(record, self.serializer)
        # A returned StopEvent ends the run: it asks nothing (its conclusion follows).
        stops = isinstance(record, EventEmitted) and isinstance(record.event, StopEvent)
        said = None if stops else asks(encoded, self.answerable)
        if said is not None:
            self.question = said
        append = Append(handler_id=self.handler_id, epoch=self.epoch, record=encoded, event=new_event, update=update)
        self.last = self.runtime.worker.append(append, chain=self, settle=functools.partial(self._stored, record))

    def _track(self, written: asyncio.Future[Any]) -> None:
        self.last = written
        written.add_done_callback(self._check)

    def _check(self, written: asyncio.Future[Any]) -> None:
        if not written.cancelled():
            error = written.exception()
            if error is not None:
                self._failed(error)

    def _failed(self, error: BaseException) -> None:
        # Every write's error comes here (none is left "never retrieved"); the first one
        # stops the writer. A server's runtime strands the run (it acts no more; the server
        # continues it from its last durable record once the store writes again); without
        # one the run fails with the error at its next record or durable().
        if self.failure is None and not self.detached:
            self.failure = error if isinstance(error, Exception) else StoreError(str(error))
            self.stranded = self.runtime.strand(self, self.failure)

    def _stored(self, record: JournalRecord, outcome: int | None | BaseException) -> None:
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, asyncio.CancelledError):
                self._failed(outcome)
            return
        if isinstance(record, RunStarted):
            settle(self.begun)
        self.runtime.stored(self.handler_id, record, outcome)

    def durable(self) -> Awaitable[None] | None:
        if self.failure is not None:
            return self._after_failure(self.failure)
        last = self.last
        if last is None or (last.done() and not last.cancelled() and last.exception() is None):
            return None
        return self._settled(last)

    async def _settled(self, last: asyncio.Future[Any]) -> None:
        # Shielded: a run cancelled while it waits must not cancel the write its records are in.
        await asyncio.shield(last)
        if self.failure is not None:
            await self._after_failure(self.failure)

    def _after_failure(self, failure: Exception) -> Awaitable[None]:
        # A stranded run waits here until the server abandons it: it never acts past
        # its last durable record, and its end is not recorded as a failure.
        return asyncio.get_running_loop().create_future() if self.stranded else _raise(failure)

    def close(self) -> None:
        settle(self.begun)
        self.runtime.forget(self.run.run_id, self)

    async def flushed(self) -> None:
        """Wait until the records written so far are stored (raises their error if they failed)."""
        if self.failure is not None:
            raise self.failure
        if self.last is not None:
            await asyncio.shield(self.last)
        if self.failure is not None:
            raise self.failure


def settle(future: asyncio.Future[None]) -> None:
    """Set ``future`` (to ``None``) unless it is already done."""
    if not future.done():
        future.set_result(None)


async def _raise(error: Exception) -> None:
    raise error




__all__ = [
    "Expected", "JournalOwner", "RecordListener", "StoreJournal", "answers_humans", "asks", "conclusion", "idle",
    "idle_payload", "only_waits", "question_of", "settle", "status_of", "streamed_entry",
]
