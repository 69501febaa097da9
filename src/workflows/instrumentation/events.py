"""Typed instrumentation events: the run's transitions, as the runtime publishes them.

The runtime never talks to OpenTelemetry. At every transition of a run it builds one of
these small records and hands it to the dispatcher (``workflows.instrumentation``);
handlers turn them into spans, metrics, log lines or a console tree.

Records hold live objects (events, exceptions, state models), not copies: a handler
that needs a payload must read it while ``handle()`` runs, because the run goes on
mutating its objects afterwards.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Mapping

if TYPE_CHECKING:
    from workflows.events import Event

RunStatus = Literal["completed", "failed", "cancelled", "timed_out"]
StepOutcome = Literal["completed", "failed", "retrying", "waiting", "cancelled", "timed_out"]
EventSource = Literal["return", "send_event", "stream", "external", "start"]
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


@dataclass(eq=False)
class InstrumentationEvent:
    """Base of every record; ``run`` is ``None`` only for user records outside a run."""

    run: RunInfo | None


@dataclass(eq=False)
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


@dataclass(eq=False)
class RunFinished(InstrumentationEvent):
    """A run ended; ``result`` is what ``await handler`` returns when completed."""

    status: RunStatus = "completed"
    result: Any = None
    stop_event: Event | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class StepStarted(InstrumentationEvent):
    """One attempt of one step invocation begins, in the task (or thread context) that runs it.

    ``event_id`` is the id the triggering event got when it was emitted (see
    ``EventEmitted.event_id``), so a handler can link the step to its cause.
    """

    step: str = ""
    invocation_id: int = 0
    attempt: int = 1
    worker: int = 0
    event: Event | None = None
    event_id: str | None = None


@dataclass(eq=False)
class StepFinished(InstrumentationEvent):
    """An attempt ended. Published in the same task as its ``StepStarted``.

    ``outcome`` is ``retrying`` when the failure will be retried after ``retry_delay``
    seconds, ``waiting`` when the step was suspended by ``ctx.wait_for_event`` (it runs
    again from the top when the awaited event arrives), ``cancelled`` when the run ended
    while the step ran, and ``timed_out`` when that end was the run's timeout.
    """

    step: str = ""
    invocation_id: int = 0
    attempt: int = 1
    outcome: StepOutcome = "completed"
    output: Event | None = None
    error: BaseException | None = None
    retry_delay: float | None = None


@dataclass(eq=False)
class EventEmitted(InstrumentationEvent):
    """An event entered the run: returned by a step, sent, streamed, or the start event.

    ``step``/``invocation_id`` name the emitting step invocation (``None`` when the
    event came from outside a step); ``targets`` the steps it was routed to.
    """

    event: Event | None = None
    event_id: str = ""
    source: EventSource = "return"
    step: str | None = None
    invocation_id: int | None = None
    targets: tuple[str, ...] = ()


@dataclass(eq=False)
class StateChanged(InstrumentationEvent):
    """The run's state store changed.

    ``op`` is ``set``, ``edit``, ``set_state`` or ``clear``. ``path`` is the JSON
    Pointer (RFC 6901) of the part that changed (``""`` for the whole state), and
    ``before``/``after`` its old and new values (``before`` is ``MISSING`` when the
    path did not exist). ``keys`` are the top-level keys or fields that changed.
    """

    op: str = "set"
    path: str = ""
    keys: tuple[str, ...] = ()
    before: Any = None
    after: Any = None
    step: str | None = None
    invocation_id: int | None = None


@dataclass(eq=False)
class WaitStarted(InstrumentationEvent):
    """A step began waiting for an external event (``ctx.wait_for_event``)."""

    step: str = ""
    invocation_id: int = 0
    waiter_id: str = ""
    event_type: type | None = None
    requirements: Mapping[str, Any] | None = None
    timeout: float | None = None


@dataclass(eq=False)
class WaitEnded(InstrumentationEvent):
    """A wait ended: the event arrived, the wait timed out, or the run ended first."""

    step: str = ""
    waiter_id: str = ""
    outcome: WaitOutcome = "received"
    event: Event | None = None


@dataclass(eq=False)
class SpanEntered(InstrumentationEvent):
    """A function decorated with ``@dispatcher.span`` was entered (in the calling task)."""

    span_id: int = 0
    name: str = ""
    arguments: Mapping[str, Any] | None = None


@dataclass(eq=False)
class SpanExited(InstrumentationEvent):
    """A ``@dispatcher.span`` function returned (``result``) or raised (``error``)."""

    span_id: int = 0
    name: str = ""
    result: Any = None
    error: BaseException | None = None


@dataclass(eq=False)
class UserEvent(InstrumentationEvent):
    """A record the user published with ``dispatcher.event(name, **attributes)``."""

    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Stands for 'no value' in ``StateChanged.before`` (the path did not exist)."""

current_run: contextvars.ContextVar[RunInfo | None] = contextvars.ContextVar(
    "workflows_current_run", default=None
)
"""The run whose step is executing in this task or thread (``None`` outside steps)."""
