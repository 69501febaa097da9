"""The default handler installed before the first run of a process (checked in fresh processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from workflows import Workflow, step
    from workflows.events import StartEvent, StopEvent
    from workflows.instrumentation import OpenTelemetryHandler, get_dispatcher

    class Hello(Workflow):
        @step
        async def hi(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="hi")

    async def run_once():
        return await Hello().run()

    mode = sys.argv[1]
    if mode == "own-handler":
        get_dispatcher().add_handler(OpenTelemetryHandler(metrics=False))
    asyncio.run(run_once())  # first run: no SDK yet
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # installed after the handler was built
    asyncio.run(run_once())
    handlers = [type(h).__name__ for h in get_dispatcher().handlers if isinstance(h, OpenTelemetryHandler)]
    print(json.dumps({"handlers": handlers, "spans": sorted(s.name for s in exporter.get_finished_spans())}))
    """
)


def run_script(mode: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOWS_", "OTEL_"))}
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120, env=environment, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_default_handler_traces_once_a_provider_is_installed() -> None:
    out = run_script("default")
    assert out["handlers"] == ["OpenTelemetryHandler"]
    assert out["spans"] == ["Hello.hi", "Hello.run", "emit StartEvent", "emit StopEvent"]


@pytest.mark.parametrize("value", ["false", "0", "off"])
def test_workflows_tracing_false_installs_nothing(value: str) -> None:
    out = run_script("default", WORKFLOWS_TRACING=value)
    assert out == {"handlers": [], "spans": []}


def test_users_own_handler_replaces_the_default() -> None:
    out = run_script("own-handler")
    assert out["handlers"] == ["OpenTelemetryHandler"]
    assert len(out["spans"]) == 4


BEFORE_FIRST_RUN = textwrap.dedent(
    """
    import io, json, logging
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from workflows.instrumentation import get_dispatcher, install_log_correlation

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    out = io.StringIO()
    logging.basicConfig(stream=out, level=logging.INFO, format="%(message)s trace=%(otelTraceID)s")
    install_log_correlation()
    logging.getLogger("app").info("before any run")

    @get_dispatcher().span
    def helper(x):
        return x * 2

    helper(21)  # no workflow has run in this process yet
    print(json.dumps({"log": out.getvalue(), "spans": [s.name for s in exporter.get_finished_spans()]}))
    """
)


def test_user_spans_and_log_fields_work_before_the_first_run() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOWS_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-c", BEFORE_FIRST_RUN], capture_output=True, text=True, timeout=120, env=environment, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["log"].strip() == "before any run trace=0"
    assert [name.rsplit(".", 1)[-1] for name in out["spans"]] == ["helper"]
