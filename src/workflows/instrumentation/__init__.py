"""Instrumentation: the runtime's transitions as typed events, and the handlers that trace them.

Before the first run of the process, an ``OpenTelemetryHandler`` (spans and metrics)
is added to the root dispatcher, unless one is already there or ``WORKFLOWS_TRACING``
is false. With no OpenTelemetry SDK configured it opts out of every run, so tracing
costs next to nothing until a provider is installed (by a plugin or by the user).

Environment variables: ``WORKFLOWS_TRACING`` (default true), ``WORKFLOWS_CAPTURE_CONTENT``
(default true), ``WORKFLOWS_MAX_PAYLOAD_BYTES`` (default 16384); see docs/tracing.md.
"""

from __future__ import annotations

from workflows.instrumentation.console import ConsoleTraceHandler

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
from workflows.instrumentation.logs import install_log_correlation
from workflows.instrumentation.metrics import OpenTelemetryMetricsHandler
from workflows.instrumentation.otel import OpenTelemetryHandler
from workflows.instrumentation.payloads import PayloadPolicy, json_patch, to_jsonable
from workflows.instrumentation.settings import TRACING_VAR, env_flag



def _install_default_handlers() -> None:
    """Add the default OpenTelemetry handler unless the user configured their own."""
    if not env_flag(TRACING_VAR, True):
        return
    root = get_dispatcher()
    # A handler given its own provider (a plugin with set_global=False) does not cover
    # the global provider, which users and other plugins may still configure.
    if any(isinstance(h, OpenTelemetryHandler) and h.follows_global_provider for h in root.handlers):
        return
    has_metrics = any(isinstance(h, OpenTelemetryMetricsHandler) for h in root.handlers)
    root.add_handler(OpenTelemetryHandler(metrics=not has_metrics))


on_first_run(_install_default_handlers)

__all__ = [
    "install_log_correlation",
    "ConsoleTraceHandler",
    "OpenTelemetryHandler",
    "OpenTelemetryMetricsHandler",
    "PayloadPolicy",
    "json_patch",
    "to_jsonable",
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

import workflows.instrumentation.llamaindex  # noqa: E402,F401  (registers its first-run hook)
import workflows.instrumentation.exporters  # noqa: E402,F401  (WORKFLOWS_EXPORTERS, set up before the first run)
