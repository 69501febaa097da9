"""Fixtures of the instrumentation tests: a real OpenTelemetry SDK, in memory.

``tracing`` builds its own TracerProvider (spans kept by an ``InMemorySpanExporter``)
and MeterProvider (an ``InMemoryMetricReader``), passes them explicitly to an
``OpenTelemetryHandler`` and puts that handler alone on the root dispatcher for the
test; the handlers that were there (such as the default one) are put back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from instrumentation.tracing_support import Tracing, make_tracing
from opentelemetry import context as otel_context

from workflows.instrumentation import get_dispatcher
from workflows.instrumentation.dispatcher import _ensure_configured


@pytest.fixture(autouse=True)
def restore_current_span() -> Iterator[None]:
    """Put the test thread's OpenTelemetry context back as it was: record-level tests may
    leave step spans attached, as a runtime does in a task that ends with its run."""
    token = otel_context.attach(otel_context.get_current())
    yield
    otel_context.detach(token)


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
