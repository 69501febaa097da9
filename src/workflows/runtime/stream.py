"""A run's event stream: what ``handler.stream_events()`` and ``ctx.stream_events()`` read.

The stream is fed the journal records it shows, in order. A streamed event, a returned
``InputRequiredEvent`` and the run's final event are kept as themselves; the engine's
internal entries (a step's start, end or queueing, an event nobody took, an idle run)
are kept as small tuples of strings, which the garbage collector does not track and
which hold no event alive, and become ``StepStateChanged``/``UnhandledEvent``/
``WorkflowIdleEvent`` only when a reader asks for internal events.
"""

from __future__ import annotations

import asyncio
from typing import Any

from workflows.events import (
    Event,
    StepState,
    StopEvent,
    StepStateChanged,
    UnhandledEvent,
    WorkflowIdleEvent,
)
from workflows.runtime.journal import EventEmitted, RunConcluded, RunIdle, StepFinished, StepQueued, StepStarted

_type_names: dict[type, str] = {}


def _type_str(t: type) -> str:
    """``str(t)``, memoised: StepStateChanged reports output types this way."""
    name = _type_names.get(t)
    if name is None:
        name = _type_names[t] = str(t)
    return name


_NONE_STR = str(type(None))
_IDLE = ("idle",)
INTERNAL_EVENTS = (StepStateChanged, UnhandledEvent, WorkflowIdleEvent)
"""The events of internal entries, hidden from readers that do not ask for them."""

ORDINARY = "ordinary"
INTERNAL = "internal"
FINAL = "final"
# Readers classify every entry they pass; isinstance on a Pydantic class goes through
# ABCMeta (a few hundred ns for three classes), a lookup by exact type does not.
ENTRY_KINDS: dict[type, str] = {tuple: INTERNAL}
"""The kind of entry of each type seen so far; a hot reader may look here before calling ``entry_kind``."""


def entry_kind(entry: Any) -> str:
    """``INTERNAL`` for an internal entry (hidden unless asked for), ``FINAL`` for a
    ``StopEvent`` (which ends a reader), ``ORDINARY`` for any other event."""
    cls = type(entry)
    kind = ENTRY_KINDS.get(cls)
    if kind is None:
        kind = INTERNAL if issubclass(cls, INTERNAL_EVENTS) else FINAL if issubclass(cls, StopEvent) else ORDINARY
        ENTRY_KINDS[cls] = kind
    return kind


def _entry(record: Any) -> Any:
    """What the stream keeps of ``record``: an event, or a tuple standing for an internal one."""
    kind = type(record)
    if kind is EventEmitted:
        if record.unhandled:
            cls = type(record.event)
            return ("unhandled", cls.__name__, f"{cls.__module__}.{cls.__qualname__}", record.step, record.idle)
        return record.event
    if kind is StepStarted:
        return ("step", record.step, "running", str(record.worker), type(record.event).__name__, None)
    if kind is StepFinished:
        outcome = record.outcome
        output = None if outcome == "failed" else _NONE_STR if outcome == "waiting" else _type_str(type(record.output))
        return ("step", record.step, "not_running", str(record.worker), _type_str(type(record.event)), output)
    if kind is StepQueued:
        return ("step", record.step, "preparing", "<enqueued>", type(record.event).__name__, None)
    if kind is RunIdle:
        return _IDLE
    if kind is RunConcluded:
        return record.final_event
    raise TypeError(f"{kind.__name__} records are not streamed")


def _materialize(entry: tuple[Any, ...]) -> Event:
    kind = entry[0]
    if kind == "step":
        _, name, state, worker_id, input_name, output_name = entry
        return StepStateChanged(
            name=name, step_state=StepState(state), worker_id=worker_id, input_event_name=input_name,
            output_event_name=output_name,
        )
    if kind == "unhandled":
        _, event_type, qualified_name, step_name, idle = entry
        return UnhandledEvent(event_type=event_type, qualified_name=qualified_name, step_name=step_name, idle=idle)
    return WorkflowIdleEvent()


def stream_event(record: Any) -> tuple[Event, bool]:
    """The event a stream reader sees for a streamed ``record``, and whether it is internal.

    For durable runtimes that keep a run's stream beside its journal.
    """
    entry = _entry(record)
    event = _materialize(entry) if type(entry) is tuple else entry
    return event, entry_kind(event) is INTERNAL


class RunStream:
    """The ordered entries of one run's stream, and the readers waiting for more."""

    __slots__ = ("entries", "closed", "raw_taken", "queues", "_wakeup", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Events, and tuples for internal entries (replaced by their event once read).
        self.entries: list[Any] = []
        self.closed = False
        self.raw_taken = False
        # The deprecated streaming_queue's, made when it is first asked for.
        self.queues: list[asyncio.Queue[Event]] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._loop = loop

    def add(self, record: Any) -> None:
        self.entries.append(_entry(record))
        self._wake()
        if self.queues:
            event = self.read(len(self.entries) - 1)[0]
            for queue in self.queues:
                queue.put_nowait(event)

    def add_event(self, event: Event) -> None:
        """Add an event a step wrote to the stream (what ``add`` keeps of its record)."""
        self.entries.append(event)
        if self._wakeup is not None:
            self._wake()
        if self.queues:
            for queue in self.queues:
                queue.put_nowait(event)

    def read(self, index: int) -> tuple[Event, bool]:
        """The event at ``index`` and whether it is internal (hidden unless asked for)."""
        entry = self.entries[index]
        if type(entry) is tuple:
            entry = self.entries[index] = _materialize(entry)
        return entry, entry_kind(entry) is INTERNAL

    def close(self) -> None:
        self.closed = True
        self._wake()

    def queue(self) -> asyncio.Queue[Event]:
        """A queue fed with every entry, past and future (the deprecated ``streaming_queue``)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        for index in range(len(self.entries)):
            queue.put_nowait(self.read(index)[0])
        if self.queues is None:
            self.queues = []
        self.queues.append(queue)
        return queue

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def changed(self) -> None:
        """Wait until something is added to the stream (or it is closed)."""
        if self._wakeup is None:
            self._wakeup = self._loop.create_future()
        await self._wakeup
