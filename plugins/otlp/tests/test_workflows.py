"""Real workflow runs traced through the OTLP plugin: to Phoenix, to a receiver, from the environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import workflows_otlp
from support.otlp_receiver import OTLPReceiver
from support.phoenix import PhoenixServer, unique_project_name, wait_for_spans

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent

SCRIPT = Path(__file__).parent / "scripts" / "run_workflow.py"


class Drafted(Event):
    draft: str


class ReportWorkflow(Workflow):
    @step
    async def draft(self, ev: StartEvent) -> Drafted:
        return Drafted(draft=f"report on {ev.topic}")

    @step
    async def publish(self, ev: Drafted) -> StopEvent:
        return StopEvent(result=ev.draft.upper())


def span_names(spans: list[dict]) -> set[str]:
    return {s["name"] for s in spans}


EXPECTED_SPANS = {"ReportWorkflow.run", "ReportWorkflow.draft", "ReportWorkflow.publish"}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_a_workflow_run_is_traced_to_phoenix(
    protocol: str, phoenix_server: PhoenixServer, fresh_otel_globals: None
) -> None:
    project = unique_project_name(f"otlp-run-{protocol.split('/')[0]}")
    endpoint = phoenix_server.base_url if protocol == "http/protobuf" else phoenix_server.otlp_grpc_endpoint
    # Phoenix takes the project from the resource over gRPC, and also from a header over HTTP.
    setup = workflows_otlp.register(
        endpoint=endpoint, protocol=protocol, resource_attributes={"openinference.project.name": project}
    )
    try:
        result = await ReportWorkflow(timeout=30).run(topic="otlp")
        assert setup.force_flush()
    finally:
        setup.shutdown()
    assert result == "REPORT ON OTLP"
    spans = wait_for_spans(phoenix_server.base_url, project, lambda s: EXPECTED_SPANS <= span_names(s))
    run = next(s for s in spans if s["name"] == "ReportWorkflow.run")
    steps = [s for s in spans if s["name"] in EXPECTED_SPANS - {"ReportWorkflow.run"}]
    assert all(s["parent_id"] == run["context"]["span_id"] for s in steps)
    assert run["attributes"]["workflow.name"] == "ReportWorkflow"
    assert run["attributes"]["workflow.run.status"] == "completed"


async def test_run_metrics_are_exported_over_otlp(otlp_receiver: OTLPReceiver, fresh_otel_globals: None) -> None:
    setup = workflows_otlp.register(endpoint=otlp_receiver.endpoint, traces=False)
    try:
        await ReportWorkflow(timeout=30).run(topic="metrics")
        assert setup.force_flush()
    finally:
        setup.shutdown()
    runs = otlp_receiver.wait_for(lambda r: [p for p in r.metrics() if p["name"] == "workflow.runs"])
    assert runs[-1]["attributes"] == {"workflow.name": "ReportWorkflow", "workflow.run.status": "completed"}
    assert runs[-1]["value"] >= 1
    names = {p["name"] for p in otlp_receiver.metrics()}
    assert {"workflow.run.duration", "workflow.step.duration", "workflow.events"} <= names


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_a_collector_that_is_down_does_not_break_a_workflow(
    protocol: str, monkeypatch: pytest.MonkeyPatch, fresh_otel_globals: None
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    setup = workflows_otlp.register(endpoint=f"http://127.0.0.1:{closed_port()}", protocol=protocol, logs=True)
    try:
        results = [await ReportWorkflow(timeout=30).run(topic=str(n)) for n in range(3)]
        setup.force_flush(timeout_millis=5_000)
    finally:
        setup.shutdown()
    assert results == ["REPORT ON 0", "REPORT ON 1", "REPORT ON 2"]


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_", "WORKFLOWS_"))}
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env={**base, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def test_workflows_exporters_otlp_traces_a_program_without_code(otlp_receiver: OTLPReceiver) -> None:
    done = run_script(
        {
            "WORKFLOWS_EXPORTERS": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=search",
            "OTEL_SERVICE_NAME": "hello-service",
        }
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello env"
    spans = otlp_receiver.wait_for(lambda r: r.spans() if len(r.spans()) >= 3 else None)
    assert {"HelloWorkflow.run", "HelloWorkflow.greet", "HelloWorkflow.finish"} <= span_names(spans)
    assert {s["resource"]["service.name"] for s in spans} == {"hello-service"}
    assert all(r.headers["x-team"] == "search" for r in otlp_receiver.requests)
    assert any(p["name"] == "workflow.runs" for p in otlp_receiver.metrics())


def test_workflows_exporters_enables_phoenix_and_otlp_together(
    phoenix_server: PhoenixServer, otlp_receiver: OTLPReceiver
) -> None:
    project = unique_project_name("phoenix-and-otlp")
    done = run_script(
        {
            "WORKFLOWS_EXPORTERS": "phoenix,otlp",
            "PHOENIX_COLLECTOR_ENDPOINT": phoenix_server.base_url,
            "PHOENIX_PROJECT_NAME": project,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp_receiver.endpoint}/v1/traces",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{otlp_receiver.endpoint}/v1/metrics",
        }
    )
    assert done.returncode == 0, done.stderr
    expected = {"HelloWorkflow.run", "HelloWorkflow.greet", "HelloWorkflow.finish"}
    in_phoenix = wait_for_spans(phoenix_server.base_url, project, lambda s: expected <= span_names(s))
    in_receiver = otlp_receiver.wait_for(lambda r: r.spans() if expected <= span_names(r.spans()) else None)
    assert {s["context"]["trace_id"] for s in in_phoenix if s["name"] in expected} == {
        s["trace_id"] for s in in_receiver if s["name"] in expected
    }


def test_the_otlp_and_prometheus_entry_points_are_installed() -> None:
    from workflows_otlp.prometheus import serve_metrics

    from workflows.instrumentation.exporters import installed_exporters

    exporters = installed_exporters()
    assert exporters["otlp"].load() is workflows_otlp.register
    assert exporters["prometheus"].load() is serve_metrics
