"""A real OTLP/HTTP receiver on loopback that captures what exporters send.

:class:`OTLPReceiver` accepts ``POST`` requests on any path, un-gzips them and decodes
the body by the path's suffix (``/v1/traces``, ``/v1/metrics``, ``/v1/logs``, so
Langfuse's ``/api/public/otel/v1/traces`` works too) as protobuf or OTLP/JSON. Tests
read the raw requests (path, headers) and flattened spans, metric points and log
records, and can make it answer with an error status (``receiver.status = 401``) to
check that a failing backend does not break a workflow.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

T = TypeVar("T")

_SIGNALS: dict[str, tuple[type[Message], type[Message]]] = {
    "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass(frozen=True)
class CapturedRequest:
    """One POST as received: header names lower-cased, body decompressed and decoded.

    ``signal`` is ``traces``, ``metrics``, ``logs`` or ``None`` for an unknown path,
    and ``message`` the decoded ``Export*ServiceRequest`` (``None`` when unknown).
    """

    path: str
    headers: dict[str, str]
    body: bytes
    signal: str | None
    message: Message | None
    status: int


class OTLPReceiver:
    """Captures OTLP/HTTP exports on ``127.0.0.1`` (a free port) until stopped.

    ``endpoint`` is the base URL (``http://127.0.0.1:PORT``); append ``/v1/traces``
    or give it to an exporter that appends the path itself. ``status`` is the HTTP
    status every request gets (200 by default; captured either way).
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self._requests: list[CapturedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OTLPReceiver is not started; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OTLPReceiver:
        if self._server is not None:
            raise RuntimeError("OTLPReceiver is already started")
        handler = type("Handler", (_OTLPHandler,), {"receiver": self})
        self._server = _HTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"otlp-receiver:{self.port}"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread and every request thread."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- captured data ------------------------------------------------------------------

    def _capture(self, request: CapturedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[CapturedRequest]:
        """A copy of every captured request, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def spans(self) -> list[dict[str, Any]]:
        """Every span received so far, flattened (see :func:`flatten_spans`)."""
        return [span for r in self.requests if r.signal == "traces" for span in flatten_spans(r.message)]

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric data point received so far (see :func:`flatten_metrics`)."""
        return [point for r in self.requests if r.signal == "metrics" for point in flatten_metrics(r.message)]

    def logs(self) -> list[dict[str, Any]]:
        """Every log record received so far (see :func:`flatten_logs`)."""
        return [record for r in self.requests if r.signal == "logs" for record in flatten_logs(r.message)]

    def wait_for(
        self, predicate: Callable[[OTLPReceiver], T | None], timeout: float = 10.0, interval: float = 0.02
    ) -> T:
        """Poll ``predicate(self)`` until it returns something truthy; return that.

        Raises ``TimeoutError`` after ``timeout`` seconds, describing what arrived.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                names = [s["name"] for s in self.spans()]
                raise TimeoutError(
                    f"OTLPReceiver: condition not met within {timeout}s; "
                    f"{len(self.requests)} requests captured, spans: {names}"
                )
            time.sleep(interval)

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` spans have arrived and return all of them."""

        def enough(receiver: OTLPReceiver) -> list[dict[str, Any]] | None:
            spans = receiver.spans()
            return spans if len(spans) >= count else None

        return self.wait_for(enough, timeout)


class _HTTPServer(ThreadingHTTPServer):
    # Request threads are joined on close; HTTP/1.0 responses end each connection, so
    # the join cannot hang on an idle keep-alive client.
    daemon_threads = False
    block_on_close = True


class _OTLPHandler(BaseHTTPRequestHandler):
    receiver: OTLPReceiver
    protocol_version = "HTTP/1.0"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = _decompress(raw, headers.get("content-encoding", ""))
        signal = _signal_of(self.path)
        message = _decode(signal, body, headers.get("content-type", "")) if signal else None
        status = self.receiver.status
        self.receiver._capture(CapturedRequest(self.path, headers, body, signal, message, status))
        if status == 200 and signal is not None:
            out = _SIGNALS[signal][1]().SerializeToString()
            content_type = "application/x-protobuf"
        else:
            out = f"OTLPReceiver answered {status} for {self.path}".encode()
            content_type = "text/plain"
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def _decompress(raw: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    return raw


def _signal_of(path: str) -> str | None:
    for signal in _SIGNALS:
        if path.split("?")[0].rstrip("/").endswith(f"/v1/{signal}"):
            return signal
    return None


def _decode(signal: str, body: bytes, content_type: str) -> Message:
    message = _SIGNALS[signal][0]()
    if content_type.startswith("application/json"):
        json_format.Parse(body.decode(), message)
    else:
        message.ParseFromString(body)
    return message


# -- flattening --------------------------------------------------------------------------


def any_value(value: AnyValue) -> Any:
    """Decode an OTLP ``AnyValue`` into the Python value it carries."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, which)


def attributes(pairs: Any) -> dict[str, Any]:
    """Decode a repeated ``KeyValue`` field into a plain dict."""
    return {kv.key: any_value(kv.value) for kv in pairs}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


def flatten_spans(request: Any) -> list[dict[str, Any]]:
    """Spans of an ``ExportTraceServiceRequest`` as plain dicts.

    Keys: name, trace_id, span_id, parent_span_id (hex; ``None`` for a root), kind,
    scope, scope_attributes, resource, attributes, status ({code, message}), events
    ([{name, attributes}]), links ([{trace_id, span_id, attributes}]),
    start_time_unix_nano, end_time_unix_nano.
    """
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "name": span.name,
                        "trace_id": _hex(span.trace_id),
                        "span_id": _hex(span.span_id),
                        "parent_span_id": _hex(span.parent_span_id),
                        "kind": _SPAN_KINDS.get(span.kind, str(span.kind)),
                        "scope": scope_spans.scope.name,
                        "scope_attributes": attributes(scope_spans.scope.attributes),
                        "resource": resource,
                        "attributes": attributes(span.attributes),
                        "status": {"code": _STATUS_CODES[span.status.code], "message": span.status.message},
                        "events": [{"name": e.name, "attributes": attributes(e.attributes)} for e in span.events],
                        "links": [
                            {
                                "trace_id": _hex(link.trace_id),
                                "span_id": _hex(link.span_id),
                                "attributes": attributes(link.attributes),
                            }
                            for link in span.links
                        ],
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                    }
                )
    return spans


def flatten_metrics(request: Any) -> list[dict[str, Any]]:
    """Data points of an ``ExportMetricsServiceRequest``, one dict per point.

    Keys: name, unit, type (``sum``, ``gauge``, ``histogram``, ...), scope, resource,
    attributes, and for sums and gauges ``value``, ``is_monotonic`` (sums only); for
    histograms ``count``, ``sum``, ``bucket_counts``, ``explicit_bounds``.
    """
    points = []
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                for point in data.data_points:
                    flat: dict[str, Any] = {
                        "name": metric.name,
                        "unit": metric.unit,
                        "type": kind,
                        "scope": scope_metrics.scope.name,
                        "resource": resource,
                        "attributes": attributes(point.attributes),
                    }
                    if kind in ("sum", "gauge"):
                        flat["value"] = getattr(point, point.WhichOneof("value"))
                        if kind == "sum":
                            flat["is_monotonic"] = data.is_monotonic
                    elif kind in ("histogram", "exponential_histogram"):
                        flat["count"] = point.count
                        flat["sum"] = point.sum
                        if kind == "histogram":
                            flat["bucket_counts"] = list(point.bucket_counts)
                            flat["explicit_bounds"] = list(point.explicit_bounds)
                    points.append(flat)
    return points


def flatten_logs(request: Any) -> list[dict[str, Any]]:
    """Log records of an ``ExportLogsServiceRequest`` as plain dicts.

    Keys: body, severity_text, severity_number, attributes, trace_id, span_id (hex or
    ``None``), scope, resource.
    """
    records = []
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                records.append(
                    {
                        "body": any_value(record.body),
                        "severity_text": record.severity_text,
                        "severity_number": record.severity_number,
                        "attributes": attributes(record.attributes),
                        "trace_id": _hex(record.trace_id),
                        "span_id": _hex(record.span_id),
                        "scope": scope_logs.scope.name,
                        "resource": resource,
                    }
                )
    return records


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A started :class:`OTLPReceiver`, stopped (threads joined) after the test."""
    with OTLPReceiver() as receiver:
        yield receiver
