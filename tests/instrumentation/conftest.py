"""Fixtures of the instrumentation tests: a real OpenTelemetry SDK, in memory.

``tracing`` builds its own TracerProvider (spans kept by an ``InMemorySpanExporter``)
and MeterProvider (an ``InMemoryMetricReader``), passes them explicitly to an
``OpenTelemetryHandler`` and puts that handler alone on the root dispatcher for the
test; the handlers that were there (such as the default one) are put back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workflows.instrumentation import OpenTelemetryHandler, get_dispatcher
from workflows.instrumentation.dispatcher import _ensure_configured


@dataclass
class Tracing:
    provider: TracerProvider
    exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    handler: OpenTelemetryHandler

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


@pytest.fixture
def isolated_root() -> Iterator[None]:
    """The root dispatcher with no handler for the test; the previous ones put back after."""
    _ensure_configured()  # run the first-run hooks now, so they do not add handlers mid-test
    root = get_dispatcher()
    saved = root.handlers
    for handler in saved:
        root.remove_handler(handler)
    yield
    for handler in root.handlers:
        root.remove_handler(handler)
    for handler in saved:
        root.add_handler(handler)


def make_tracing(**handler_options: Any) -> Tracing:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    handler = OpenTelemetryHandler(tracer_provider=provider, meter_provider=meter_provider, **handler_options)
    return Tracing(provider, exporter, meter_provider, reader, handler)


@pytest.fixture
def tracing(isolated_root: None) -> Iterator[Tracing]:
    """A handler on a fresh in-memory SDK, alone on the root dispatcher for the test."""
    setup = make_tracing()
    get_dispatcher().add_handler(setup.handler)
    yield setup
    get_dispatcher().remove_handler(setup.handler)
    setup.provider.shutdown()
    setup.meter_provider.shutdown()


@pytest.fixture
def detached_tracing() -> Iterator[Tracing]:
    """A handler on a fresh in-memory SDK, on no dispatcher: tests feed it records."""
    setup = make_tracing()
    yield setup
    setup.provider.shutdown()
    setup.meter_provider.shutdown()
