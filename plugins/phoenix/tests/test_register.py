"""How ``workflows_phoenix.register`` configures tracing: arguments, environment
variables, transports, the provider's lifetime, and a Phoenix that is down."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import workflows_phoenix
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.otlp_receiver import OTLPReceiver
from support.phoenix import (
    PhoenixProject,
    PhoenixServer,
    unique_project_name,
    wait_for_spans,
)
from support.processes import free_port

from workflows import Workflow, step
from workflows.events import StartEvent, StopEvent
from workflows.instrumentation import get_dispatcher


class Greeter(Workflow):
    @step
    async def greet(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=f"hello {ev.name}")


GREETER_SPANS = 4  # run, emit StartEvent, greet, emit StopEvent


@pytest.fixture(autouse=True)
def no_phoenix_settings_from_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("PHOENIX_", "OTEL_EXPORTER_OTLP")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PHOENIX_DISCOVER_CONFIG", "false")


def capture_spans(provider: SDKTracerProvider) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter), replace_default_processor=False)  # type: ignore[call-arg]
    return exporter


def test_plugin_is_found_as_the_phoenix_exporter_entry_point() -> None:
    [entry_point] = [ep for ep in entry_points(group="workflows.exporters") if ep.name == "phoenix"]
    assert entry_point.load() is workflows_phoenix.register


async def test_provider_that_is_not_global_traces_runs_until_it_shuts_down(otlp_receiver: OTLPReceiver) -> None:
    handlers_before = get_dispatcher().handlers
    provider = workflows_phoenix.register("local", endpoint=otlp_receiver.endpoint, set_global=False)
    [plugins_handler] = [h for h in get_dispatcher().handlers if h not in handlers_before]
    captured = capture_spans(provider)
    try:
        assert await Greeter().run(name="Ada") == "hello Ada"
        assert "Greeter.run" in {s.name for s in captured.get_finished_spans()}
        assert trace.get_tracer_provider() is not provider
    finally:
        provider.shutdown()
    # Compared by identity: the engine may add its default handlers at the first run.
    assert plugins_handler not in get_dispatcher().handlers


async def test_grpc_provider_traces_through_its_own_handler_when_another_one_is_already_global(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, phoenix_server: PhoenixServer
) -> None:
    # Phoenix's gRPC receiver reads the project from the resource only, so the plugin
    # cannot join the global provider there and keeps a provider of its own.
    someone_elses = SDKTracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: someone_elses)

    provider = workflows_phoenix.register("late", endpoint=phoenix_server.otlp_grpc_endpoint, protocol="grpc")
    captured = capture_spans(provider)
    try:
        assert provider is not someone_elses
        assert await Greeter().run(name="Grace") == "hello Grace"
    finally:
        provider.shutdown()
        someone_elses.shutdown()

    assert "Greeter.greet" in {s.name for s in captured.get_finished_spans()}
    assert any("already global" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_http_provider_joins_the_global_sdk_provider_with_phoenix_headers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, otlp_receiver: OTLPReceiver
) -> None:
    monkeypatch.setenv("PHOENIX_API_KEY", "phx-secret")
    monkeypatch.setenv("PHOENIX_CLIENT_HEADERS", "x-team=search")
    someone_elses = SDKTracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: someone_elses)
    handlers_before = get_dispatcher().handlers

    provider = workflows_phoenix.register("joined", endpoint=otlp_receiver.endpoint, batch=False)
    try:
        assert provider is someone_elses
        assert get_dispatcher().handlers == handlers_before
        with someone_elses.get_tracer("test").start_as_current_span("recorded by the shared provider"):
            pass
    finally:
        someone_elses.shutdown()

    [span] = otlp_receiver.wait_for_spans(1)
    assert span["name"] == "recorded by the shared provider"
    [request] = [r for r in otlp_receiver.requests if r.signal == "traces"]
    assert request.path == "/v1/traces"
    assert request.headers["x-project-name"] == "joined"
    assert request.headers["authorization"] == "Bearer phx-secret"
    assert request.headers["x-team"] == "search"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_unknown_protocol_fails_before_anything_is_configured() -> None:
    handlers_before = get_dispatcher().handlers
    with pytest.raises(ValueError, match="protocol='http/json' is not supported"):
        workflows_phoenix.register("p", endpoint="http://localhost:6006", protocol="http/json")
    assert get_dispatcher().handlers == handlers_before


async def test_api_key_project_and_headers_reach_the_collector(
    monkeypatch: pytest.MonkeyPatch, otlp_receiver: OTLPReceiver
) -> None:
    monkeypatch.setenv("PHOENIX_API_KEY", "phx-secret")
    monkeypatch.setenv("PHOENIX_PROJECT_NAME", "from-the-environment")
    provider = workflows_phoenix.register(
        endpoint=otlp_receiver.endpoint, headers={"X-Team": "search"}, set_global=False
    )
    try:
        await Greeter().run(name="Linus")
        provider.force_flush()
    finally:
        provider.shutdown()

    spans = otlp_receiver.wait_for_spans(GREETER_SPANS)
    assert {s["resource"]["openinference.project.name"] for s in spans} == {"from-the-environment"}
    [request, *_] = [r for r in otlp_receiver.requests if r.signal == "traces"]
    assert request.path == "/v1/traces"
    assert request.headers["authorization"] == "Bearer phx-secret"
    assert request.headers["x-team"] == "search"


async def test_phoenix_that_is_down_leaves_the_run_alone_and_the_failure_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")  # seconds; keeps the test short
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    provider = workflows_phoenix.register(unique_project_name(), endpoint=nobody_listens, set_global=False)
    try:
        assert await Greeter().run(name="offline") == "hello offline"
        with caplog.at_level(logging.ERROR, logger="opentelemetry"):
            provider.force_flush()
    finally:
        provider.shutdown()

    export_errors = [
        r for r in caplog.records if r.name.startswith("opentelemetry.exporter") and r.levelno >= logging.ERROR
    ]
    assert export_errors, "the failed export should be logged"
    assert "Failed to export" in export_errors[0].getMessage()


async def test_spans_reach_phoenix_over_grpc_when_the_address_is_its_grpc_port(
    monkeypatch: pytest.MonkeyPatch, phoenix_server: PhoenixServer
) -> None:
    monkeypatch.setenv("PHOENIX_GRPC_PORT", str(phoenix_server.grpc_port))
    project = unique_project_name("grpc")
    provider = workflows_phoenix.register(project, endpoint=phoenix_server.otlp_grpc_endpoint, set_global=False)
    try:
        await Greeter().run(name="gRPC")
        spans = PhoenixProject(phoenix_server, project, provider).spans(GREETER_SPANS)
    finally:
        provider.shutdown()

    assert {s["name"] for s in spans} >= {"Greeter.run", "Greeter.greet"}


JOINING_SCRIPT = """
import asyncio, sys
import workflows_otlp, workflows_phoenix
from opentelemetry import trace
from workflows import Workflow, step
from workflows.events import StartEvent, StopEvent

class Greeter(Workflow):
    @step
    async def greet(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=f"hello {ev.name}")

otlp_url, phoenix_url, project = sys.argv[1:]
workflows_otlp.register(endpoint=otlp_url, metrics=False)
provider = workflows_phoenix.register(project_name=project, endpoint=phoenix_url)
assert provider is trace.get_tracer_provider()

async def main():
    print(await Greeter().run(name="both"))

asyncio.run(main())
"""


def test_phoenix_registered_after_otlp_gets_the_same_traces_as_the_otlp_receiver(
    phoenix_server: PhoenixServer, otlp_receiver: OTLPReceiver
) -> None:
    # A fresh interpreter, since the global provider can be set only once per process;
    # both exporters flush when it exits.
    project = unique_project_name("joined")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_", "WORKFLOWS_"))}
    env["PHOENIX_DISCOVER_CONFIG"] = "false"
    completed = subprocess.run(
        [sys.executable, "-c", JOINING_SCRIPT, otlp_receiver.endpoint, phoenix_server.base_url, project],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "hello both"
    assert "another" not in completed.stderr
    in_phoenix = wait_for_spans(phoenix_server.base_url, project, GREETER_SPANS)
    at_the_receiver = otlp_receiver.wait_for_spans(GREETER_SPANS)
    assert {s["name"] for s in in_phoenix} >= {"Greeter.run", "Greeter.greet"}
    assert {s["context"]["trace_id"] for s in in_phoenix} == {s["trace_id"] for s in at_the_receiver}


SCRIPT = """
import asyncio
from workflows import Workflow, step
from workflows.events import StartEvent, StopEvent

class Greeter(Workflow):
    @step
    async def greet(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=f"hello {ev.name}")

async def main():
    print(await Greeter().run(name="env"))

asyncio.run(main())
"""


def test_workflows_exporters_and_phoenix_variables_alone_trace_a_script(phoenix_server: PhoenixServer) -> None:
    # A script that never mentions the plugin, run the way users run scripts:
    # WORKFLOWS_EXPORTERS finds the plugin through its entry point, which calls
    # register() with no arguments (so the provider becomes the global one), Phoenix's
    # variables say where to send, and the spans are flushed when the interpreter exits.
    project = unique_project_name("env")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_", "WORKFLOWS_"))}
    env.update(
        WORKFLOWS_EXPORTERS="phoenix",
        PHOENIX_COLLECTOR_ENDPOINT=phoenix_server.base_url,
        PHOENIX_PROJECT_NAME=project,
        PHOENIX_DISCOVER_CONFIG="false",
    )
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=180, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "hello env"
    spans = wait_for_spans(phoenix_server.base_url, project, GREETER_SPANS)
    assert {s["name"] for s in spans} >= {"Greeter.run", "Greeter.greet"}
