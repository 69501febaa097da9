"""Log correlation: log records carry the current trace and span ids and the run id.

Installed once per process when an OpenTelemetry handler is built (the default one is
built before the first run); call ``install_log_correlation()`` yourself to have the
fields before that, for example right after ``logging.basicConfig``.
It wraps the logging record factory (it chains to the one in place) and sets these
attributes on every record, for use in format strings such as
``"%(message)s trace=%(otelTraceID)s span=%(otelSpanID)s run=%(workflow_run_id)s"``:

- ``otelTraceID`` (32 hex digits), ``otelSpanID`` (16 hex digits), ``otelTraceSampled``
  (the names OpenTelemetry's own logging instrumentation uses, so existing formats
  work; ``"0"`` and ``False`` outside any span);
- ``workflow_run_id``: the id of the run whose step is executing (``""`` elsewhere).

OpenTelemetry's SDK log bridge (``LoggingHandler``) already reads the span context
itself; these attributes are for text logs.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry import trace

from workflows.instrumentation.events import current_run

_lock = threading.Lock()
_installed = False


def install_log_correlation() -> None:
    """Make every log record carry the trace/span/run ids (idempotent)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def record_with_trace_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                record.otelTraceID = format(span_context.trace_id, "032x")
                record.otelSpanID = format(span_context.span_id, "016x")
                record.otelTraceSampled = span_context.trace_flags.sampled
            else:
                record.otelTraceID = "0"
                record.otelSpanID = "0"
                record.otelTraceSampled = False
            run = current_run.get()
            record.workflow_run_id = run.run_id if run is not None else ""
            return record

        logging.setLogRecordFactory(record_with_trace_ids)
        _installed = True
