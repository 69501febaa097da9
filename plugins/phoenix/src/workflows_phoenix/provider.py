"""``register()``: one call that sends every workflow run to Phoenix.

The tracer provider, its exporter and the project's resource are built by Phoenix's own
client (``phoenix.otel.register`` from ``arize-phoenix-otel``); this module only decides
where to send (``endpoint.py``) and how the engine's spans reach Phoenix:

- as the global OpenTelemetry provider, which the engine's default OpenTelemetry
  handler follows (``set_global=True``, the usual case);
- by adding an exporter to the global SDK provider another plugin already installed
  (``set_global=True`` over HTTP, see ``shared_provider.py``);
- or through an ``OpenTelemetryHandler`` of its own on the root dispatcher, when the
  provider must not be global (``set_global=False``), or another provider already is
  and cannot be joined (gRPC, or not an SDK provider). That handler is removed when the
  provider shuts down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from phoenix.otel import PROJECT_NAME, GRPCSpanExporter, HTTPSpanExporter, TracerProvider
from phoenix.otel import register as phoenix_register
from phoenix.otel.settings import get_env_project_name

from workflows.instrumentation import (
    Dispatcher,
    InstrumentationHandler,
    OpenTelemetryHandler,
    get_dispatcher,
)
from workflows.instrumentation.export_grace import GracefulBatchSpanProcessor, GuardedSpanExporter, arm_at_exit
from workflows_phoenix import shared_provider
from workflows_phoenix.endpoint import HTTP, Destination, resolve_destination

logger = logging.getLogger("workflows_phoenix")


def register(
    project_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    batch: bool = True,
    auto_instrument: bool = False,
    set_global: bool = True,
    export_grace: float | None = None,
) -> SDKTracerProvider:
    """Send the engine's spans to Phoenix and return the tracer provider doing it.

    Arguments left out come from Phoenix's usual environment variables:
    ``PHOENIX_PROJECT_NAME`` (else project ``default``), ``PHOENIX_COLLECTOR_ENDPOINT``
    (else ``http://localhost:6006``), ``PHOENIX_API_KEY`` (sent as a bearer token) and
    ``PHOENIX_CLIENT_HEADERS``. ``endpoint`` may be Phoenix's base URL or the full
    ``.../v1/traces`` URL; ``protocol`` is ``"http/protobuf"`` (default) or ``"grpc"``.

    ``batch=True`` exports in batches from a background thread; ``batch=False`` sends
    each span as soon as it ends (handy in short scripts), from that thread too: a slow
    or unreachable Phoenix never delays a run, nor blocks the event loop, either way.
    When the program ends (or the provider shuts down), what is left gets
    ``export_grace`` seconds in all (default ``WORKFLOWS_EXPORT_GRACE_SECONDS``, else 2)
    to reach Phoenix; what could not be sent is counted and logged once. ``auto_instrument=True`` also
    turns on every installed OpenInference instrumentor (``openai``, ...) with this
    provider, so LLM calls show up nested under the step that made them.

    With ``set_global=True`` and a global OpenTelemetry SDK provider already installed
    (by ``workflows_otlp``, ``workflows_langfuse`` or the application), an OTLP/HTTP
    exporter to Phoenix is added to that provider, the project going in the
    ``x-project-name`` header, and that shared provider is returned: every backend sees
    the same spans and trace ids. Over gRPC, whose receiver takes the project from the
    provider's resource only, a provider of Phoenix's own traces the runs instead,
    through a handler of its own, with a warning.

    Call ``force_flush()`` on the returned provider to push pending spans now, and
    ``shutdown()`` to stop exporting (it also runs at interpreter exit). When the
    provider is shared, ``shutdown()`` stops every exporter on it, the other plugins'
    too; leave it to whoever installed it, or to interpreter exit.
    """
    destination = resolve_destination(endpoint, protocol)
    arm_at_exit(export_grace)  # checks export_grace before anything is set up
    shared = shared_provider.global_sdk_provider() if set_global else None
    if shared is not None and destination.protocol == HTTP:
        project = project_name or get_env_project_name()
        joined = shared_provider.join(shared, destination, project, headers, batch=batch, auto_instrument=auto_instrument)
        arm_at_exit(export_grace)
        return joined
    can_be_global = set_global and not _global_provider_is_set()
    # phoenix.otel.register is annotated with OpenInference's base class, but builds its own subclass
    provider = cast(
        TracerProvider,
        phoenix_register(
            project_name=project_name,
            endpoint=destination.endpoint,
            protocol=destination.protocol,
            headers=dict(headers) if headers else None,
            batch=True,
            set_global_tracer_provider=can_be_global,
            auto_instrument=auto_instrument,
            verbose=False,
        ),
    )
    # Phoenix's own processor is replaced by one whose end is bounded (and whose
    # batch=False does not export on the thread that ends the span). Being added as a
    # processor, not as Phoenix's "default" one, it also stays when someone else adds a
    # processor later (Phoenix drops its default one then, unless told not to).
    provider.add_span_processor(_graceful_processor(destination, headers, batch), replace_default_processor=True)
    if not (can_be_global and trace.get_tracer_provider() is provider):
        if set_global:
            logger.warning(
                "another OpenTelemetry tracer provider is already global; workflow spans are "
                "sent to Phoenix through a handler of their own (OpenInference instrumentors "
                "turned on elsewhere keep using the global provider)"
            )
        _follow_runs_with(provider)
    logger.info(
        "sending workflow traces to Phoenix project %r at %s (%s)",
        provider.resource.attributes.get(PROJECT_NAME),
        destination.endpoint,
        destination.protocol,
    )
    arm_at_exit(export_grace)  # after the provider's own exit hook: runs before it
    return provider


def _graceful_processor(
    destination: Destination, headers: Mapping[str, str] | None, batch: bool
) -> GracefulBatchSpanProcessor:
    """Phoenix's exporter (its headers: ``PHOENIX_API_KEY``, ``PHOENIX_CLIENT_HEADERS``),
    behind the exit grace."""
    given = dict(headers) if headers else None
    exporter = (
        HTTPSpanExporter(endpoint=destination.endpoint, headers=given)
        if destination.protocol == HTTP
        else GRPCSpanExporter(endpoint=destination.endpoint, headers=given)
    )
    guarded = GuardedSpanExporter(exporter, destination=destination.endpoint, log=logger)
    return GracefulBatchSpanProcessor(guarded, batch=batch)


def _global_provider_is_set() -> bool:
    # Until someone sets one, the API hands out a proxy; set_tracer_provider works once.
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _follow_runs_with(provider: TracerProvider) -> None:
    """Trace every run with ``provider``, until the provider shuts down."""
    dispatcher = get_dispatcher()
    # Metrics are not per provider: leave them to a handler that already records them,
    # so runs are not counted twice.
    metered = any(isinstance(h, OpenTelemetryHandler) and h.metrics is not None for h in dispatcher.handlers)
    handler = OpenTelemetryHandler(tracer_provider=provider, metrics=not metered)
    dispatcher.add_handler(handler)
    provider.add_span_processor(_RemoveHandlerOnShutdown(dispatcher, handler), replace_default_processor=False)


class _RemoveHandlerOnShutdown(SpanProcessor):
    """Ties a dispatcher handler's life to its provider: no runs traced into a dead exporter."""

    def __init__(self, dispatcher: Dispatcher, handler: InstrumentationHandler) -> None:
        self._dispatcher = dispatcher
        self._handler = handler

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        self._dispatcher.remove_handler(self._handler)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
