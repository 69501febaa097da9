"""What the instrumentation tests share: an in-memory OpenTelemetry SDK around a handler.

Imported as ``instrumentation.tracing_support`` (the root conftest puts ``tests`` on
``sys.path``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workflows.instrumentation import OpenTelemetryHandler


class OpenSpans(SpanProcessor):
    """Tracks the spans started and not yet ended, to catch leaks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open: dict[int, str] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with self._lock:
            self.open[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.open.pop(span.context.span_id, None)


@dataclass
class Tracing:
    """A handler and the SDK objects it records into, with span and metric look-ups."""

    provider: TracerProvider
    exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    handler: OpenTelemetryHandler
    open_spans: OpenSpans = field(default_factory=OpenSpans)

    def leaked(self) -> list[str]:
        """Names of the spans started and never ended."""
        return sorted(self.open_spans.open.values())

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]

    def children_of(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.parent is not None and s.parent.span_id == span.context.span_id]

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


def make_tracing(**handler_options: Any) -> Tracing:
    """A handler (``handler_options`` passed on) with explicit in-memory providers."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    open_spans = OpenSpans()
    provider.add_span_processor(open_spans)
    handler = OpenTelemetryHandler(tracer_provider=provider, meter_provider=meter_provider, **handler_options)
    return Tracing(provider, exporter, meter_provider, reader, handler, open_spans)
