"""Instrumentation: the runtime's transitions as typed events, and the handlers that trace them."""

from workflows.instrumentation.dispatcher import (
    Dispatcher,
    InstrumentationHandler,
    get_dispatcher,
    on_first_run,
)
from workflows.instrumentation.events import (
    MISSING,
    EventEmitted,
    InstrumentationEvent,
    RunFinished,
    RunInfo,
    RunStarted,
    SpanEntered,
    SpanExited,
    StateChanged,
    StepFinished,
    StepStarted,
    UserEvent,
    WaitEnded,
    WaitStarted,
    current_run,
)

__all__ = [
    "Dispatcher",
    "InstrumentationHandler",
    "get_dispatcher",
    "on_first_run",
    "MISSING",
    "EventEmitted",
    "InstrumentationEvent",
    "RunFinished",
    "RunInfo",
    "RunStarted",
    "SpanEntered",
    "SpanExited",
    "StateChanged",
    "StepFinished",
    "StepStarted",
    "UserEvent",
    "WaitEnded",
    "WaitStarted",
    "current_run",
]
