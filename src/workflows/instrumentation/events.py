"""Typed instrumentation events: the run's transitions, as the runtime publishes them.

The runtime never talks to OpenTelemetry. At every transition of a run it builds one
record of its journal (``workflows.runtime.journal``, re-exported here) and hands it to
the dispatcher (``workflows.instrumentation``); handlers turn them into spans, metrics,
log lines or a console tree. This module adds the records that do not come from a run's
loop: user spans (``@dispatcher.span``) and user events (``dispatcher.event``).

Records hold live objects (events, exceptions, state models), not copies: a handler
that needs a payload must read it while ``handle()`` runs, because the run goes on
mutating its objects afterwards. Every record is built with keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from workflows.runtime.journal import (
    MISSING,
    CollectBuffered,
    EventEmitted,
    EventSource,
    InstrumentationEvent,
    JournalRecord,
    RunConcluded,
    RunFinished,
    RunIdle,
    RunInfo,
    RunStarted,
    RunStatus,
    StateChanged,
    StepFinished,
    StepOutcome,
    StepQueued,
    StepStarted,
    StreamOpened,
    WaitEnded,
    WaitOutcome,
    WaitStarted,
    current_run,
)


@dataclass(eq=False, kw_only=True, slots=True)
class SpanEntered(InstrumentationEvent):
    """A function decorated with ``@dispatcher.span`` was entered (in the calling task).

    ``kind`` is the OpenInference span kind it was declared with (``None``: ``CHAIN``);
    ``gen_ai_name`` what GenAI attributes call it (the tool's or agent's name)."""

    span_id: int = 0
    name: str = ""
    arguments: Mapping[str, Any] | None = None
    kind: str | None = None
    gen_ai_name: str = ""


@dataclass(eq=False, kw_only=True, slots=True)
class SpanExited(InstrumentationEvent):
    """A ``@dispatcher.span`` function returned (``result``) or raised (``error``)."""

    span_id: int = 0
    name: str = ""
    result: Any = None
    error: BaseException | None = None


@dataclass(eq=False, kw_only=True, slots=True)
class UserEvent(InstrumentationEvent):
    """A record the user published with ``dispatcher.event(name, **attributes)``.

    ``step``/``invocation_id``, when set, name the step invocation whose span the event
    belongs on (the OpenTelemetry handler then uses that span rather than the current one):
    the bridge to ``llama_index_instrumentation`` sets them for the llama-index events a
    step dispatches, since a handler of that package may leave another span current.
    """

    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    step: str | None = None
    invocation_id: int | None = None


__all__ = [
    "MISSING",
    "CollectBuffered",
    "EventEmitted",
    "EventSource",
    "InstrumentationEvent",
    "JournalRecord",
    "RunConcluded",
    "RunFinished",
    "RunIdle",
    "RunInfo",
    "RunStarted",
    "RunStatus",
    "SpanEntered",
    "SpanExited",
    "StateChanged",
    "StepFinished",
    "StepOutcome",
    "StepQueued",
    "StepStarted",
    "StreamOpened",
    "UserEvent",
    "WaitEnded",
    "WaitOutcome",
    "WaitStarted",
    "current_run",
]
