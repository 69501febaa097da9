"""The run's journal: one typed record per transition, and the one place records go.

Every change of a run is one of the records below, built once by the run loop and
handed to ``Journal.add``. From there the same record reaches, in this order:

1. the runtime's journal writer (a durable runtime persists it *before* the run acts
   on it, so the run can be continued elsewhere from what was written),
2. the run's event stream (``handler.stream_events()``), which keeps the records it
   shows and turns them into events only when a reader asks,
3. the instrumentation handlers that follow the run (spans, metrics, logs),
4. the ``verbose`` printer.

Records hold live objects (events, exceptions, state models), not copies: whoever
needs a payload must read or encode it while it handles the record, because the run
goes on mutating its objects afterwards. ``workflows.runtime.codec`` turns records
into JSON-ready dicts and back, and ``workflows.runtime.replay`` folds them onto a
saved run to rebuild it.

Work items are named by their ``seq``: the run numbers each delivery of an event to a
step once, and the number survives saving and resuming, so a record can say which
delivery it is about in any process.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Mapping, Protocol

if TYPE_CHECKING:
    from workflows.events import Event

RunStatus = Literal["completed", "failed", "cancelled", "timed_out", "released"]
"""How a run ended; ``released`` means its process let go of it while it waited (it goes on elsewhere)."""
StepOutcome = Literal["completed", "failed", "retrying", "waiting", "cancelled", "timed_out"]
EventSource = Literal["return", "send_event", "stream", "external", "start", "release"]
"""Where an event came from; ``release`` is the ``CollectionReleaseEvent`` the run sends a collect step."""
WaitOutcome = Literal["received", "timed_out", "cancelled"]


@dataclass(eq=False)
class RunInfo:
    """Identity of one run, shared by every record the run publishes.

    ``workflow_name`` is the name spans are named after (the workflow's
    ``workflow_name`` argument when given, else its class name); ``session_id`` is the
    id of the Context, shared by every run that reuses it; ``is_agent`` is the
    workflow's ``is_agent`` class attribute (traces mark such runs as AGENT).
    ``scratch`` is free for handlers to keep per-run data in, keyed by handler.
    """

    workflow_name: str
    run_id: str
    session_id: str
    workflow_class: str = ""
    is_agent: bool = False
    scratch: dict[Any, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True, slots=True)
class InstrumentationEvent:
    """Base of every record; ``run`` is ``None`` only for user records outside a run."""

    run: RunInfo | None


# ---------------------------------------------------------------------------- run


@dataclass(eq=False, kw_only=True, slots=True)
class RunStarted(InstrumentationEvent):
    """A run began. Published from the run's own task, so the caller's context is current.

    ``start_event`` is ``None`` when the run resumes a serialized context (``resumed``);
    ``carrier`` then holds what handlers injected when the context was serialized (for
    example the W3C ``traceparent`` of the original run span), so the resumed run can
    continue that trace. ``workflow`` is the workflow instance that runs.
    """

    start_event: Event | None = None
    resumed: bool = False
    carrier: Mapping[str, str] | None = None
    workflow: Any = None


@dataclass(eq=False, kw_only=True, slots=True)
class RunConcluded(InstrumentationEvent):
    """The run's outcome was decided (a ``StopEvent``, a failure, the timeout, a cancel).

    Its steps are being stopped; ``RunFinished`` follows once they have. ``final_event``
    is what the stream ends with: the ``StopEvent`` a step returned, or the terminal
    event of ``workflows.events`` (``WorkflowFailedEvent``, ``WorkflowTimedOutEvent``,
    ``WorkflowCancelledEvent``).
    """

    status: RunStatus = "completed"
    final_event: Event | None = None
    result: Any = None
    error: BaseException | None = None


@dataclass(eq=False, kw_only=True, slots=True)
class RunFinished(InstrumentationEvent):
    """A run ended; ``result`` is what ``await handler`` returns when completed.

    ``detached_threads`` counts the sync steps whose executor thread was still running
    when the run ended (a thread cannot be stopped: it finishes on its own and its
    result is dropped).
    """

    status: RunStatus = "completed"
    result: Any = None
    stop_event: Event | None = None
    error: BaseException | None = None
    detached_threads: int = 0


@dataclass(eq=False, kw_only=True, slots=True)
class RunIdle(InstrumentationEvent):
    """The run is unfinished but has no work: it waits for an event from outside."""


# ---------------------------------------------------------------------------- events


@dataclass(eq=False, kw_only=True, slots=True)
class EventEmitted(InstrumentationEvent):
    """An event entered the run (returned by a step, sent, streamed, or the start event) and was routed.

    ``step``/``invocation_id`` name the emitting step invocation (``None`` when the
    event came from outside a step); ``targets`` the steps it was routed to, and
    ``seqs`` the work item each of them got (waiters that the event woke keep the seq
    of the work they resume, see ``WaitEnded``). ``completes`` is the seq of the work
    item whose step returned this event: that delivery is done once its result is
    routed. ``sender`` is the seq of the delivery whose step sent the event with
    ``ctx.send_event`` (``None`` from outside the steps). ``woken`` are the ids of the waits the event ended (``WaitEnded`` follows
    for each). ``unhandled`` is true when nothing took the event, and ``idle`` when the run
    then had no work at all. A ``source="stream"`` event is only written to the stream.

    Fan-out streams (see ``StreamOpened``): ``stream`` is the stream the event travels
    in (its deliveries belong to it); ``collected`` maps each collect step whose batch
    took the event to the stream of that batch; ``releases`` is set on the
    ``CollectionReleaseEvent`` that hands a collect step its batch of that stream.
    """

    event: Event | None = None
    event_id: str = ""
    source: EventSource = "return"
    step: str | None = None
    invocation_id: int | None = None
    targets: tuple[str, ...] = ()
    seqs: tuple[int, ...] = ()
    lineage: Mapping[str, int] | None = None
    completes: int | None = None
    sender: int | None = None
    woken: tuple[str, ...] = ()
    unhandled: bool = False
    idle: bool = False
    stream: int | None = None
    collected: Mapping[str, int] | None = None
    releases: int | None = None


# ---------------------------------------------------------------------------- steps


@dataclass(eq=False, kw_only=True, slots=True)
class StepQueued(InstrumentationEvent):
    """A delivery waits for a free worker of its step (``num_workers`` are all busy)."""

    step: str = ""
    seq: int = 0
    event: Event | None = None


@dataclass(eq=False, kw_only=True, slots=True)
class StepStarted(InstrumentationEvent):
    """One attempt of one step invocation begins, in the task (or thread context) that runs it.

    ``event_id`` is the id the triggering event got when it was emitted (see
    ``EventEmitted.event_id``), so a handler can link the step to its cause; ``seq`` is
    the work item being run. ``attempt`` counts attempts of this delivery, including
    those of a process that ran it before a crash (a durable run continued elsewhere
    runs an interrupted step again with the next attempt number).
    """

    step: str = ""
    invocation_id: int = 0
    attempt: int = 1
    worker: int = 0
    event: Event | None = None
    event_id: str | None = None
    seq: int = 0


@dataclass(eq=False, kw_only=True, slots=True)
class StepFinished(InstrumentationEvent):
    """An attempt ended. Published in the same task as its ``StepStarted``.

    ``outcome`` is ``retrying`` when the failure will be retried after ``retry_delay``
    seconds, ``waiting`` when the step was suspended by ``ctx.wait_for_event`` (it runs
    again from the top when the awaited event arrives), ``cancelled`` when the run ended
    while the step ran, and ``timed_out`` when that end was the run's timeout.
    ``event`` is the step's input.
    """

    step: str = ""
    invocation_id: int = 0
    attempt: int = 1
    outcome: StepOutcome = "completed"
    output: Event | None = None
    error: BaseException | None = None
    retry_delay: float | None = None
    worker: int = 0
    event: Event | None = None
    seq: int = 0


# ---------------------------------------------------------------------------- state


@dataclass(eq=False, kw_only=True, slots=True)
class StateChanged(InstrumentationEvent):
    """The run's state store changed.

    ``op`` is ``set``, ``edit``, ``set_state`` or ``clear``. ``path`` is the JSON
    Pointer (RFC 6901) of the part that changed (``""`` for the whole state), and
    ``before``/``after`` its old and new values (``before`` is ``MISSING`` when the
    path did not exist). ``keys`` are the top-level keys or fields that changed.
    ``step``/``invocation_id``/``seq`` name the step invocation that made the change
    (``None`` for a change made from outside the run's steps).
    """

    op: str = "set"
    path: str = ""
    keys: tuple[str, ...] = ()
    before: Any = None
    after: Any = None
    step: str | None = None
    invocation_id: int | None = None
    seq: int | None = None


# ---------------------------------------------------------------------------- waits and collect


@dataclass(eq=False, kw_only=True, slots=True)
class WaitStarted(InstrumentationEvent):
    """A step parked in ``ctx.wait_for_event``: delivery ``seq`` waits for an outside event."""

    step: str = ""
    invocation_id: int = 0
    waiter_id: str = ""
    event_type: type | None = None
    requirements: Mapping[str, Any] | None = None
    timeout: float | None = None
    seq: int = 0


@dataclass(eq=False, kw_only=True, slots=True)
class WaitEnded(InstrumentationEvent):
    """A wait ended: the event arrived, the wait timed out, or the run ended first.

    On ``received`` and ``timed_out`` delivery ``seq`` is queued again, to run its step
    from the top (``wait_for_event`` then returns ``event`` or raises a timeout).
    """

    step: str = ""
    waiter_id: str = ""
    outcome: WaitOutcome = "received"
    event: Event | None = None
    seq: int = 0


@dataclass(eq=False, kw_only=True, slots=True)
class CollectBuffered(InstrumentationEvent):
    """``ctx.collect_events`` (or a join step) kept ``event`` in a step's buffer; ``complete`` when a set was handed out.

    A join step's buffer has the id ``"<join>"`` and keeps later arrivals: a complete
    set hands out the oldest event of each ``expected`` type.
    """

    step: str = ""
    buffer_id: str = ""
    event: Event | None = None
    expected: tuple[type, ...] = ()
    complete: bool = False
    invocation_id: int | None = None
    seq: int | None = None


@dataclass(eq=False, kw_only=True, slots=True)
class StreamOpened(InstrumentationEvent):
    """A fan-out step returned a list: delivery ``seq`` opened stream ``stream`` of ``size`` events.

    The stream is named by the seq of the delivery that opened it; ``parent`` is the
    stream that delivery belonged to (``None`` at the top). The elements follow as
    ``EventEmitted`` records with ``stream`` set; an empty list opens an empty stream,
    whose collect steps are released with ``[]``.
    """

    step: str = ""
    invocation_id: int = 0
    seq: int = 0
    stream: int = 0
    parent: int | None = None
    size: int = 0


JournalRecord = (
    RunStarted | RunConcluded | RunFinished | RunIdle | EventEmitted | StepQueued | StepStarted | StepFinished
    | StateChanged | WaitStarted | WaitEnded | CollectBuffered | StreamOpened
)
"""Every transition of a run."""


class JournalWriter(Protocol):
    """Where a runtime sends a run's records; see ``workflows.plugins.Runtime``.

    ``write`` is called synchronously, on the run's event loop, in the order the run
    makes its records. A writer either persists the record there, or queues it and
    also defines ``durable()`` (see ``BatchingJournalWriter``): the run then awaits it
    before it acts outside itself (before a step's code runs, and before the run's
    outcome is handed out), so a record is durable before anything depends on it, and
    the records one hop makes (a step's end, the events it emitted, the next step's
    start) reach the store in one write. An exception from ``write`` or from what
    ``durable()`` returns fails the run (it cannot go on without its journal).
    ``close`` is called once, after ``RunFinished``.
    """

    def write(self, record: JournalRecord) -> None: ...

    def close(self) -> None: ...


class BatchingJournalWriter(JournalWriter, Protocol):
    """A journal writer that queues records: ``durable()`` is awaited before the run acts."""

    def durable(self) -> Awaitable[None] | None:
        """An awaitable done once every record written so far is durable; ``None`` if they are."""
        ...


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Stands for 'no value' in ``StateChanged.before`` (the path did not exist)."""

current_run: contextvars.ContextVar[RunInfo | None] = contextvars.ContextVar(
    "workflows_current_run", default=None
)
"""The run whose step is executing in this task or thread (``None`` outside steps)."""


class _Stream(Protocol):
    """The run's stream (``workflows.runtime.stream.RunStream``), fed the records it shows."""

    def add(self, record: Any) -> None: ...


class Journal:
    """Hands each record of one run to the writer, the stream, the handlers and the printer.

    ``full`` says whether anyone but the stream reads records: when it is false the
    run skips building the records that only they need (tracing off, no durable
    runtime, not verbose: a run then costs what its stream needs and no more). Until
    ``follow`` is called (as the run begins) only the stream reads them.
    """

    __slots__ = ("writer", "durable", "stream", "publish", "handlers", "say", "on_write_error", "full")

    def __init__(
        self,
        *,
        stream: _Stream,
        publish: Callable[[Any, Any], None],
        on_write_error: Callable[[Exception], None],
    ) -> None:
        self.writer: JournalWriter | None = None
        self.durable: Callable[[], Awaitable[None] | None] | None = None
        """The writer's ``durable`` when it queues its records (``BatchingJournalWriter``)."""
        self.stream = stream
        self.publish = publish
        self.handlers: tuple[Any, ...] = ()
        self.say: Callable[[Any], None] | None = None
        self.on_write_error = on_write_error
        self.full = False

    def follow(self, writer: JournalWriter | None, say: Callable[[Any], None] | None) -> None:
        """Deliver the next records to ``writer`` and ``say`` too (the handlers are set apart)."""
        self.writer = writer
        self.durable = getattr(writer, "durable", None)
        self.say = say
        self.full = bool(writer is not None or self.handlers or say is not None)

    def add(self, record: Any, *, streamed: bool = False, closing: bool = False) -> None:
        """Deliver ``record``; ``streamed`` puts it on the stream; ``closing`` reverses handler order.

        Handlers may attach an OpenTelemetry context when a step starts; closing in
        reverse order lets each detach its own token while it is the innermost one.
        """
        writer = self.writer
        if writer is not None:
            try:
                writer.write(record)
            except Exception as exc:
                self._write_failed(exc)
        if streamed:
            self.stream.add(record)
        if self.handlers:
            self.publish(record, reversed(self.handlers) if closing else self.handlers)
        if self.say is not None:
            self.say(record)

    async def settle(self) -> None:
        """Wait until the records added so far are durable (at once without a batching writer)."""
        durable = self.durable
        if durable is None:
            return
        pending = durable()
        if pending is None:
            return
        try:
            await pending
        except Exception as exc:
            if self.writer is not None:
                self._write_failed(exc)

    def _write_failed(self, exc: Exception) -> None:
        # The run cannot go on without its journal: it fails with this error, and
        # nothing more is written for it.
        self.writer = None
        self.durable = None
        self.on_write_error(exc)
