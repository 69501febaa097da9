"""The exit grace of the exporter plugins (``workflows.instrumentation.export_grace``).

A real SDK ``BatchSpanProcessor`` over the guard, over an exporter that hangs like a
backend that never answers (it blocks until released) or one that refuses every batch.
The plugins' end-to-end checks (a fresh interpreter, 200 runs, a dead backend) are in
each plugin's ``tests/test_dead_backend.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from workflows.instrumentation.export_grace import GRACE, GracefulBatchSpanProcessor, GuardedSpanExporter
from workflows.instrumentation.settings import EXPORT_GRACE_VAR, export_grace_seconds

log = logging.getLogger("test_export_grace")


class Hanging(SpanExporter):
    """Never answers until ``release`` is set (a silent backend, with a way out for the test)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.release.wait(30)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class Refusing(SpanExporter):
    """Refuses every batch and says so in its log, as the OTLP exporters do."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        logging.getLogger("opentelemetry.exporter.fake").error("refused %d", len(spans))
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


# the guard mutes the loggers of OpenTelemetry's exporter modules
Refusing.__module__ = "opentelemetry.exporter.fake"


@pytest.fixture
def short_grace() -> Iterator[None]:
    saved = GRACE.seconds
    GRACE.seconds = 0.2
    yield
    GRACE.seconds = saved
    GRACE.reset()


def spans(provider: TracerProvider, count: int) -> None:
    tracer = provider.get_tracer("t")
    for i in range(count):
        tracer.start_span(f"s{i}").end()


def test_shutdown_with_a_backend_that_never_answers_ends_within_the_grace(
    short_grace: None, caplog: pytest.LogCaptureFixture
) -> None:
    inner = Hanging()
    guarded = GuardedSpanExporter(inner, destination="http://silent", log=log)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(GracefulBatchSpanProcessor(guarded))
    spans(provider, 1500)  # three batches of 512 and the rest
    finished = threading.Event()
    with caplog.at_level(logging.WARNING, logger="test_export_grace"):
        threading.Thread(target=lambda: (provider.shutdown(), finished.set()), daemon=True).start()
        ended = finished.wait(20)  # a bound against a hang; the grace is 0.2 s
        inner.release.set()
    assert ended, "the provider's shutdown waited for the backend"
    assert guarded.unsent == 1500 and guarded.sent == 0
    assert inner.calls == 1  # the stuck request is left behind; nothing else is sent after the grace
    (summary,) = [r.getMessage() for r in caplog.records if "could not be sent" in r.getMessage()]
    assert "1500 workflow span(s) could not be sent to http://silent" in summary


def test_failures_are_counted_and_the_exporters_own_logs_muted_at_the_end(
    short_grace: None, caplog: pytest.LogCaptureFixture
) -> None:
    guarded = GuardedSpanExporter(Refusing(), destination="http://refusing", log=log)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(GracefulBatchSpanProcessor(guarded))
    with caplog.at_level(logging.INFO):
        spans(provider, 3)
        provider.force_flush()
        before_end = [r for r in caplog.records if r.name == "opentelemetry.exporter.fake"]
        spans(provider, 2)  # held by the batch processor (5 s schedule) until its shutdown
        provider.shutdown()
    assert guarded.unsent == 5
    assert before_end, "before the end, the exporter's own errors are the SDK's as usual"
    muted_after = [r for r in caplog.records[len(before_end):] if r.name == "opentelemetry.exporter.fake"]
    assert muted_after == []
    summaries = [r.getMessage() for r in caplog.records if "could not be sent" in r.getMessage()]
    assert len(summaries) == 1 and "the exporter said: refused" in summaries[0]


def test_a_healthy_backend_gets_everything(short_grace: None) -> None:
    inner = Hanging()
    inner.release.set()
    guarded = GuardedSpanExporter(inner, destination="http://ok", log=log)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(GracefulBatchSpanProcessor(guarded))
    spans(provider, 10)
    provider.shutdown()
    assert (guarded.sent, guarded.unsent) == (10, 0)


def test_an_early_shutdown_does_not_cut_other_exporters_short(short_grace: None) -> None:
    first = GuardedSpanExporter(Refusing(), destination="a", log=log)
    first.shutdown()
    ok = Hanging()
    ok.release.set()
    second = GuardedSpanExporter(ok, destination="b", log=log)
    assert second.export([]) is SpanExportResult.SUCCESS
    assert first.export([]) is SpanExportResult.FAILURE


def test_the_grace_setting(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert export_grace_seconds(0) == 0.0
    monkeypatch.setenv(EXPORT_GRACE_VAR, "1.5")
    assert export_grace_seconds() == 1.5
    monkeypatch.setenv(EXPORT_GRACE_VAR, "soon")
    with caplog.at_level(logging.WARNING):
        assert export_grace_seconds() == 2.0
    assert EXPORT_GRACE_VAR in caplog.text
    with pytest.raises(ValueError, match="number of seconds"):
        export_grace_seconds(-1)
