"""register(): real exports to a real Phoenix (HTTP and gRPC) and to capture receivers."""

from __future__ import annotations

import logging
import socket

import pytest
import workflows_otlp
from opentelemetry import trace
from support.otlp_receiver import OTLPReceiver
from support.phoenix import PhoenixServer, unique_project_name, wait_for_spans


def record_trace(setup: workflows_otlp.OTLPSetup, root: str = "root") -> str:
    """Record a root span with one child through ``setup``'s provider; return the trace id (hex)."""
    assert setup.tracer_provider is not None
    tracer = setup.tracer_provider.get_tracer("workflows_otlp.tests")
    with tracer.start_as_current_span(root) as span:
        with tracer.start_as_current_span(f"{root}.child"):
            pass
    return format(span.get_span_context().trace_id, "032x")


def test_traces_reach_phoenix_over_http_with_the_project_header(phoenix_server: PhoenixServer) -> None:
    project = unique_project_name("otlp-http")
    setup = workflows_otlp.register(
        endpoint=phoenix_server.base_url, headers={"x-project-name": project}, metrics=False, set_global=False
    )
    try:
        trace_id = record_trace(setup)
        assert setup.force_flush()
    finally:
        setup.shutdown()
    spans = wait_for_spans(phoenix_server.base_url, project, 2)
    assert {s["name"] for s in spans} == {"root", "root.child"}
    assert {s["context"]["trace_id"] for s in spans} == {trace_id}
    assert setup.traces is not None and setup.traces.endpoint == f"{phoenix_server.base_url}/v1/traces"


def test_phoenix_is_reached_from_environment_variables_alone(
    phoenix_server: PhoenixServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique_project_name("otlp-env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix_server.otlp_grpc_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={project}")
    setup = workflows_otlp.register(metrics=False, set_global=False)
    try:
        record_trace(setup, "from-env")
        assert setup.force_flush()
    finally:
        setup.shutdown()
    assert setup.traces is not None and setup.traces.protocol == "grpc"
    spans = wait_for_spans(phoenix_server.base_url, project, 2)
    assert {s["name"] for s in spans} == {"from-env", "from-env.child"}


def test_standard_variables_set_resource_headers_limits_and_batching(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{otlp_receiver.endpoint}/custom/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20c2VjcmV0,x-tenant=acme")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-agent")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    setup = workflows_otlp.register(metrics=False, set_global=False)
    try:
        assert setup.tracer_provider is not None
        tracer = setup.tracer_provider.get_tracer("workflows_otlp.tests")
        for index in range(5):
            with tracer.start_as_current_span(f"span-{index}") as span:
                span.set_attribute("input.value", "a long payload that gets cut")
        assert setup.force_flush()
    finally:
        setup.shutdown()
    requests = [r for r in otlp_receiver.requests if r.signal == "traces"]
    assert {r.path for r in requests} == {"/custom/v1/traces"}
    assert all(r.headers["authorization"] == "Basic c2VjcmV0" and r.headers["x-tenant"] == "acme" for r in requests)
    assert len(requests) >= 3  # batches of at most two spans
    spans = otlp_receiver.spans()
    assert len(spans) == 5
    assert {s["resource"]["service.name"] for s in spans} == {"billing-agent"}
    assert {s["resource"]["deployment.environment"] for s in spans} == {"staging"}
    assert {s["attributes"]["input.value"] for s in spans} == {"a long p"}


def test_header_arguments_add_to_and_override_the_environment_over_http(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-region=eu")
    setup = workflows_otlp.register(
        endpoint=otlp_receiver.endpoint, headers={"X-Tenant": "globex", "x-api-key": "k1"}, metrics=False, set_global=False
    )
    try:
        record_trace(setup)
        assert setup.force_flush()
    finally:
        setup.shutdown()
    headers = otlp_receiver.wait_for(lambda r: [q.headers for q in r.requests if q.signal == "traces"])[0]
    assert headers["x-tenant"] == "globex"
    assert headers["x-region"] == "eu"
    assert headers["x-api-key"] == "k1"
    assert headers["content-type"] == "application/x-protobuf"


def test_header_arguments_travel_as_grpc_metadata(grpc_trace_receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-region=eu")
    setup = workflows_otlp.register(
        endpoint=grpc_trace_receiver.endpoint,
        protocol="grpc",
        headers={"Authorization": "Bearer t0ken"},
        metrics=False,
        set_global=False,
    )
    try:
        record_trace(setup)
        assert setup.force_flush()
    finally:
        setup.shutdown()
    metadata, request = grpc_trace_receiver.wait_for_export()
    assert metadata["authorization"] == "Bearer t0ken"
    assert metadata["x-region"] == "eu"
    assert request.resource_spans[0].scope_spans[0].spans[0].name in {"root", "root.child"}


def test_metrics_are_exported_with_their_attributes(otlp_receiver: OTLPReceiver) -> None:
    setup = workflows_otlp.register(endpoint=otlp_receiver.endpoint, traces=False, set_global=False)
    try:
        assert setup.meter_provider is not None and setup.tracer_provider is None
        meter = setup.meter_provider.get_meter("workflows")
        meter.create_counter("workflow.runs").add(3, {"workflow.name": "W", "workflow.run.status": "completed"})
        assert setup.force_flush()
    finally:
        setup.shutdown()
    points = otlp_receiver.wait_for(lambda r: [p for p in r.metrics() if p["name"] == "workflow.runs"])
    assert points[-1]["value"] == 3
    assert points[-1]["attributes"] == {"workflow.name": "W", "workflow.run.status": "completed"}
    assert {r.path for r in otlp_receiver.requests} == {"/v1/metrics"}


def test_otel_metrics_exporter_none_switches_metrics_off(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    setup = workflows_otlp.register(endpoint=otlp_receiver.endpoint, set_global=False)
    try:
        assert setup.meter_provider is None
        assert setup.tracer_provider is not None
    finally:
        setup.shutdown()


def test_logs_are_exported_with_the_span_they_were_logged_in(otlp_receiver: OTLPReceiver) -> None:
    setup = workflows_otlp.register(endpoint=otlp_receiver.endpoint, metrics=False, logs=True, set_global=False)
    log = logging.getLogger("workflows_otlp.tests.app")
    log.setLevel(logging.INFO)
    try:
        assert setup.tracer_provider is not None
        with setup.tracer_provider.get_tracer("t").start_as_current_span("step") as span:
            log.warning("charged %s cents", 42)
        assert setup.force_flush()
    finally:
        setup.shutdown()
    assert setup.log_handler not in logging.getLogger().handlers
    records = otlp_receiver.wait_for(lambda r: [x for x in r.logs() if x["body"] == "charged 42 cents"])
    context = span.get_span_context()
    assert records[0]["severity_text"] == "WARN"
    assert records[0]["trace_id"] == format(context.trace_id, "032x")
    assert records[0]["span_id"] == format(context.span_id, "016x")
    assert records[0]["attributes"]["logger.name"] == "workflows_otlp.tests.app"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_collector_that_is_down_costs_only_logged_errors(
    protocol: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    setup = workflows_otlp.register(endpoint=f"http://127.0.0.1:{closed_port()}", protocol=protocol, set_global=False)
    with caplog.at_level(logging.ERROR, logger="opentelemetry.exporter"):
        try:
            record_trace(setup)
            assert setup.meter_provider is not None
            setup.meter_provider.get_meter("workflows").create_counter("workflow.runs").add(1)
            setup.force_flush(timeout_millis=5_000)
        finally:
            setup.shutdown()
    assert any("Failed to export" in record.getMessage() for record in caplog.records)


def test_set_global_installs_the_providers_the_api_hands_out(fresh_otel_globals: None, otlp_receiver: OTLPReceiver) -> None:
    setup = workflows_otlp.register(endpoint=otlp_receiver.endpoint, metrics=False)
    try:
        assert trace.get_tracer_provider() is setup.tracer_provider
        with trace.get_tracer("via-api").start_as_current_span("global-span"):
            pass
        assert setup.force_flush()
    finally:
        setup.shutdown()
    assert [s["name"] for s in otlp_receiver.wait_for_spans(1)] == ["global-span"]


def test_a_second_register_joins_the_global_provider_and_leaves_it_working_on_shutdown(
    fresh_otel_globals: None, otlp_receiver: OTLPReceiver
) -> None:
    with OTLPReceiver() as second_receiver:
        first = workflows_otlp.register(endpoint=otlp_receiver.endpoint, metrics=False)
        second = workflows_otlp.register(endpoint=second_receiver.endpoint, metrics=False)
        assert second.tracer_provider is first.tracer_provider
        tracer = trace.get_tracer("via-api")
        with tracer.start_as_current_span("both"):
            pass
        assert first.force_flush() and second.force_flush()
        assert [s["name"] for s in second_receiver.wait_for_spans(1)] == ["both"]
        second.shutdown()
        with tracer.start_as_current_span("first-only"):
            pass
        assert first.force_flush()
        first.shutdown()
        otlp_receiver.wait_for(lambda r: "first-only" in [s["name"] for s in r.spans()])
        assert [s["name"] for s in second_receiver.spans()] == ["both"]
