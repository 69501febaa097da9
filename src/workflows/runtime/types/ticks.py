"""A run's tick log: the events added from outside and the step invocations that finished.

Importing this module turns on the log for every run started afterwards: a small
instrumentation handler (``TickRecorder``) follows each run and appends its ticks to the
run's ``RunInfo.scratch``, where ``handler.ctx._face._tick_log`` reads them
(``workflows.context.external_context``). ``llama-index-utils-workflow``'s
``draw_most_recent_execution`` draws a run from this log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, Union

from workflows.events import Event
from workflows.instrumentation.dispatcher import get_dispatcher
from workflows.instrumentation.events import (
    EventEmitted,
    InstrumentationEvent,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from workflows.runtime.types import TICK_LOG_KEY
from workflows.runtime.types.results import StepFunctionResult, StepWorkerFailed, StepWorkerResult, StepWorkerWaiter

R = TypeVar("R")


@dataclass(kw_only=True)
class TickAddEvent:
    """``event`` entered the run from outside: the start event, or one sent with ``handler.ctx.send_event``."""

    event: Event
    step_name: str | None = None


@dataclass(kw_only=True)
class TickStepResult(Generic[R]):
    """Step ``step_id`` finished an invocation on ``event``; ``result`` lists what it produced."""

    step_id: str
    worker_id: int
    event: Event
    result: list[StepFunctionResult] = field(default_factory=list)


WorkflowTick = Union[TickAddEvent, TickStepResult[Any]]

_PENDING_KEY = "workflows.runtime.types.ticks:pending"


class TickRecorder:
    """Follows every run and records its ticks (an ``InstrumentationHandler``)."""

    def handle(self, event: InstrumentationEvent) -> bool | None:
        run = event.run
        if run is None:
            return None
        scratch = run.scratch
        if isinstance(event, RunStarted):
            scratch[TICK_LOG_KEY] = []
            scratch[_PENDING_KEY] = {}
            return True
        log: list[WorkflowTick] | None = scratch.get(TICK_LOG_KEY)
        pending: dict[int, tuple[StepStarted, list[StepFunctionResult]]] | None = scratch.get(_PENDING_KEY)
        if log is None or pending is None:
            return None
        if isinstance(event, EventEmitted) and event.event is not None:
            if event.source in ("start", "external"):
                log.append(TickAddEvent(event=event.event))
            elif event.source in ("return", "send_event") and event.invocation_id in pending:
                pending[event.invocation_id][1].append(StepWorkerResult(result=event.event))
        elif isinstance(event, StepStarted) and event.event is not None:
            pending[event.invocation_id] = (event, [])
        elif isinstance(event, StepFinished) and event.outcome != "retrying":
            started, results = pending.pop(event.invocation_id, (None, []))
            if started is None or started.event is None:
                return None
            if event.outcome == "failed" and event.error is not None:
                results.append(StepWorkerFailed(exception=event.error))
            elif event.outcome == "waiting":
                results.append(StepWorkerWaiter())
            log.append(TickStepResult(step_id=event.step, worker_id=started.worker, event=started.event, result=results))
        elif isinstance(event, RunFinished):
            scratch.pop(_PENDING_KEY, None)
        return None


recorder = TickRecorder()
get_dispatcher().add_handler(recorder)

__all__ = ["TickAddEvent", "TickRecorder", "TickStepResult", "WorkflowTick", "recorder"]
