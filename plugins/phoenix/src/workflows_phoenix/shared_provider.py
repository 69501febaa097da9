"""Joining a global SDK tracer provider that someone else installed (another plugin, the app).

The global provider can be set only once per process. When ``workflows_otlp`` or
``workflows_langfuse`` got there first, the Phoenix plugin adds one more OTLP/HTTP exporter
to that provider instead of building its own: every backend then sees the same spans
with the same trace ids, LLM spans of instrumentors bound to the global provider
included.

That provider's resource does not name the Phoenix project, so the project travels in
the ``x-project-name`` header, which Phoenix's HTTP receiver reads before the resource.
Its gRPC receiver reads only the resource, hence HTTP only.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from importlib.metadata import entry_points

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from phoenix.otel.settings import get_env_client_headers, get_env_phoenix_auth_header

from workflows.instrumentation.export_grace import GracefulBatchSpanProcessor, GuardedSpanExporter
from workflows_phoenix.endpoint import Destination

logger = logging.getLogger("workflows_phoenix")

PROJECT_HEADER = "x-project-name"


def global_sdk_provider() -> TracerProvider | None:
    """The global tracer provider if it is an OpenTelemetry SDK one (Phoenix's included)."""
    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


def join(
    provider: TracerProvider,
    destination: Destination,
    project: str,
    headers: Mapping[str, str] | None,
    *,
    batch: bool,
    auto_instrument: bool,
) -> TracerProvider:
    """Export ``provider``'s spans to Phoenix's OTLP/HTTP ``destination`` as well, filed
    under ``project``; returns ``provider``."""
    exporter = OTLPSpanExporter(endpoint=destination.endpoint, headers=phoenix_headers(headers, project))
    guarded = GuardedSpanExporter(exporter, destination=destination.endpoint, log=logger)
    _add_span_processor(provider, GracefulBatchSpanProcessor(guarded, batch=batch))
    if auto_instrument:
        _instrument_openinference_libraries(provider)
    logger.info(
        "sending workflow traces to Phoenix project %r at %s through the global tracer provider already installed",
        project,
        destination.endpoint,
    )
    return provider


def phoenix_headers(headers: Mapping[str, str] | None, project: str) -> dict[str, str]:
    """The headers Phoenix's own exporter would send, plus the project header.

    Like ``phoenix.otel``: ``headers`` when given, else ``PHOENIX_CLIENT_HEADERS``; then
    ``PHOENIX_API_KEY`` as a bearer token unless an ``authorization`` header is already
    there. A ``x-project-name`` the caller set wins, as it does on Phoenix's own provider.
    """
    given = dict(headers) if headers else (get_env_client_headers() or {})
    sent = {name.lower(): value for name, value in given.items()}
    if "authorization" not in sent:
        sent.update(get_env_phoenix_auth_header() or {})
    sent.setdefault(PROJECT_HEADER, project)
    return sent


def _add_span_processor(provider: TracerProvider, processor: SpanProcessor) -> None:
    # A provider built by phoenix.otel drops its own exporter when another processor is
    # added, unless told to keep it.
    if "replace_default_processor" in inspect.signature(provider.add_span_processor).parameters:
        provider.add_span_processor(processor, replace_default_processor=False)  # type: ignore[call-arg]
    else:
        provider.add_span_processor(processor)


def _instrument_openinference_libraries(provider: TracerProvider) -> None:
    """What ``phoenix.otel.register(auto_instrument=True)`` does, for a provider it did not build."""
    found = entry_points(group="openinference_instrumentor")
    if not found:
        logger.warning("auto_instrument=True but no OpenInference instrumentor is installed")
    for entry_point in found:
        entry_point.load()().instrument(tracer_provider=provider)
