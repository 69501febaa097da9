"""A run's event stream: what ``handler.stream_events()`` and ``ctx.stream_events()`` read.

The stream keeps the journal records it shows, in order, and turns each into the
event a reader sees only when one asks (most runs' internal entries are never read):
a step's start, end or queueing becomes a ``StepStateChanged``, an event nobody took an
``UnhandledEvent``, an idle run a ``WorkflowIdleEvent``; a streamed event, a returned
``InputRequiredEvent`` and the run's final event are themselves.
"""

from __future__ import annotations

import asyncio
from typing import Any

from workflows.events import (
    Event,
    StepState,
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


def _materialize(record: Any) -> tuple[Event, bool]:
    """The event a reader sees for ``record``, and whether it is an internal one."""
    kind = type(record)
    if kind is EventEmitted:
        if record.unhandled:
            cls = type(record.event)
            return UnhandledEvent(
                event_type=cls.__name__, qualified_name=f"{cls.__module__}.{cls.__qualname__}",
                step_name=record.step, idle=record.idle,
            ), True
        return record.event, False
    if kind is StepStarted:
        return StepStateChanged(
            name=record.step, step_state=StepState.RUNNING, worker_id=str(record.worker),
            input_event_name=type(record.event).__name__, output_event_name=None,
        ), True
    if kind is StepFinished:
        if record.outcome == "failed":
            output = None
        elif record.outcome == "waiting":
            output = _NONE_STR
        else:
            output = _type_str(type(record.output))
        return StepStateChanged(
            name=record.step, step_state=StepState.NOT_RUNNING, worker_id=str(record.worker),
            input_event_name=_type_str(type(record.event)), output_event_name=output,
        ), True
    if kind is StepQueued:
        return StepStateChanged(
            name=record.step, step_state=StepState.PREPARING, worker_id="<enqueued>",
            input_event_name=type(record.event).__name__, output_event_name=None,
        ), True
    if kind is RunIdle:
        return WorkflowIdleEvent(), True
    if kind is RunConcluded:
        return record.final_event, False
    raise TypeError(f"{kind.__name__} records are not streamed")


def stream_event(record: Any) -> tuple[Event, bool]:
    """The event a stream reader sees for a streamed ``record``, and whether it is internal.

    For durable runtimes that keep a run's stream beside its journal.
    """
    return _materialize(record)


class RunStream:
    """The ordered entries of one run's stream, and the readers waiting for more."""

    __slots__ = ("entries", "events", "closed", "raw_taken", "queues", "_wakeup", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.entries: list[Any] = []
        # Materialized events by index, filled as readers get to them.
        self.events: dict[int, tuple[Event, bool]] = {}
        self.closed = False
        self.raw_taken = False
        self.queues: list[asyncio.Queue[Event]] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._loop = loop

    def add(self, record: Any) -> None:
        self.entries.append(record)
        self._wake()
        if self.queues:
            event = self.read(len(self.entries) - 1)[0]
            for queue in self.queues:
                queue.put_nowait(event)

    def read(self, index: int) -> tuple[Event, bool]:
        """The event at ``index`` and whether it is internal (hidden unless asked for)."""
        found = self.events.get(index)
        if found is None:
            found = self.events[index] = _materialize(self.entries[index])
        return found

    def close(self) -> None:
        self.closed = True
        self._wake()

    def queue(self) -> asyncio.Queue[Event]:
        """A queue fed with every entry, past and future (the deprecated ``streaming_queue``)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        for index in range(len(self.entries)):
            queue.put_nowait(self.read(index)[0])
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
