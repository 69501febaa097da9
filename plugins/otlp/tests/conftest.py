"""Fixtures of the OTLP plugin's tests.

``grpc_trace_receiver`` is a real OTLP/gRPC trace receiver that records each
export's call metadata (the shared ``otlp_receiver`` speaks HTTP only, and headers sent
over gRPC travel as metadata, which only a gRPC server can show).

``fresh_otel_globals`` gives a test the process-wide OpenTelemetry providers as they are
before any set-up, and shuts down and forgets whatever the test installed, so tests
that exercise ``set_global=True`` neither see nor leak each other's exporters. It
resets the API's private "set once" guards: there is no public way to do that.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import _internal as logs_internal
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.util._once import Once


def _reset() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    logs_internal._LOGGER_PROVIDER_SET_ONCE = Once()
    logs_internal._LOGGER_PROVIDER = None


@pytest.fixture
def fresh_otel_globals() -> Iterator[None]:
    saved = (
        trace._TRACER_PROVIDER_SET_ONCE,
        trace._TRACER_PROVIDER,
        metrics_internal._METER_PROVIDER_SET_ONCE,
        metrics_internal._METER_PROVIDER,
        logs_internal._LOGGER_PROVIDER_SET_ONCE,
        logs_internal._LOGGER_PROVIDER,
    )
    _reset()
    try:
        yield
    finally:
        for provider in (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider()):
            shutdown = getattr(provider, "shutdown", None)
            if shutdown is not None:
                shutdown()
        (
            trace._TRACER_PROVIDER_SET_ONCE,
            trace._TRACER_PROVIDER,
            metrics_internal._METER_PROVIDER_SET_ONCE,
            metrics_internal._METER_PROVIDER,
            logs_internal._LOGGER_PROVIDER_SET_ONCE,
            logs_internal._LOGGER_PROVIDER,
        ) = saved


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the developer's OTEL_* / WORKFLOWS_EXPORTERS settings."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or name == "WORKFLOWS_EXPORTERS":
            monkeypatch.delenv(name)


class GrpcTraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Started with ``with``; ``endpoint`` is ``http://127.0.0.1:PORT`` (plaintext)."""

    def __init__(self) -> None:
        self.exports: list[tuple[dict[str, str], Any]] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.exports.append((dict(context.invocation_metadata()), request))
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for_export(self, timeout: float = 10.0) -> tuple[dict[str, str], Any]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.exports:
                    return self.exports[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no gRPC export arrived within {timeout} s")
            time.sleep(0.02)

    def __enter__(self) -> GrpcTraceReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(grace=None).wait()


@pytest.fixture
def grpc_trace_receiver() -> Iterator[GrpcTraceReceiver]:
    with GrpcTraceReceiver() as receiver:
        yield receiver
