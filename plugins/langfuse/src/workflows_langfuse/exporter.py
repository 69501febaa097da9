"""The span exporter behind the Langfuse SDK's processor: maps, then sends over OTLP.

Spans are immutable once they end, so the ``langfuse.*`` attributes (see
``mapping.py``) are added to a copy of each span right before it is encoded. Export
runs on the batch processor's thread, never in a workflow's task, and a Langfuse that
is down or refuses the keys only costs a logged warning and a count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList

from workflows.instrumentation.export_grace import ExportGuard
from workflows_langfuse.mapping import langfuse_attributes

logger = logging.getLogger("workflows_langfuse")


class LangfuseMappingExporter(SpanExporter):
    """Adds Langfuse's attributes to every span, then hands the batch to ``exporter``.

    ``exported_spans``, ``failed_spans`` and ``failed_batches`` count what happened. The
    first failure after a success (or ever) is logged as a warning naming
    ``endpoint``; the inner exporter logs the HTTP status or connection error itself.
    Once the export is ending (the program ends, or ``shutdown()``), failures are only
    counted: the exit guard around the inner exporter logs them once, in all.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        endpoint: str,
        environment: str | None = None,
        release: str | None = None,
    ) -> None:
        self._exporter = exporter
        self.endpoint = endpoint
        self._environment = environment
        self._release = release
        self._lock = threading.Lock()
        self._failing = False
        self._shut_down = False
        self.exported_spans = 0
        self.failed_spans = 0
        self.failed_batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            return SpanExportResult.FAILURE
        try:
            mapped = [self._mapped(span) for span in spans]
            result = self._exporter.export(mapped)
        except Exception as exc:  # the processor's thread must survive whatever happens here
            logger.debug("Langfuse export raised", exc_info=exc)
            result = SpanExportResult.FAILURE
        self._record(result, len(spans))
        return result

    def _mapped(self, span: ReadableSpan) -> ReadableSpan:
        added = langfuse_attributes(span, environment=self._environment, release=self._release)
        if not added:
            return span
        return _with_attributes(span, {**(span.attributes or {}), **added})

    def _record(self, result: SpanExportResult, count: int) -> None:
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported_spans += count
                self._failing = False
                return
            self.failed_spans += count
            self.failed_batches += 1
            first_of_streak = not self._failing
            self._failing = True
        if first_of_streak and not self._ending():
            logger.warning(
                "could not send %d workflow span(s) to Langfuse at %s; workflows are not affected. "
                "Check that Langfuse is reachable and that LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY "
                "belong to it (the exporter's own log says what the server answered). Further failures "
                "are counted, and logged again after the next success.",
                count,
                self.endpoint,
            )

    def _ending(self) -> bool:
        guard = self._guard()
        return guard is not None and guard.ending

    def _guard(self) -> ExportGuard | None:
        guard = getattr(self._exporter, "guard", None)
        return guard if isinstance(guard, ExportGuard) else None

    def begin_end(self) -> None:
        """The export is ending: from now on it has the exit grace, in all."""
        guard = self._guard()
        if guard is not None:
            guard.begin_end()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self._exporter.shutdown()


def _with_attributes(span: ReadableSpan, attributes: dict[str, object]) -> ReadableSpan:
    """A copy of ``span`` with other attributes (the dropped counts are kept)."""
    bounded = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)  # type: ignore[arg-type]
    bounded.dropped = span.dropped_attributes
    events: BoundedList = BoundedList(None)
    events.extend(span.events)
    events.dropped = span.dropped_events
    links: BoundedList = BoundedList(None)
    links.extend(span.links)
    links.dropped = span.dropped_links
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=bounded,
        events=events,
        links=links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
