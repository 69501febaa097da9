"""How ``register()`` wires the export: entry point, global or private provider, the
Langfuse SDK's span filter and per-key singleton, shutdown, and the off switch."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest
import workflows_langfuse
from sample_workflows_langfuse import MyWorkflow
from support.otlp_receiver import OTLPReceiver
from workflows_langfuse import LangfuseConfigurationError, LangfuseSetup

from workflows.instrumentation import get_dispatcher
from workflows.instrumentation.exporters import installed_exporters

Register = Callable[..., LangfuseSetup]
TESTS = pathlib.Path(__file__).parent


def test_plugin_is_the_langfuse_entry_point_of_workflows_exporters() -> None:
    assert installed_exporters()["langfuse"].load() is workflows_langfuse.register


async def test_engine_spans_pass_the_sdk_filter_that_drops_unknown_scopes(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    assert langfuse.tracer_provider is not None
    tracer = langfuse.tracer_provider.get_tracer("some.http.library")
    with tracer.start_as_current_span("GET /unrelated"):
        pass
    with tracer.start_as_current_span("chat gpt-x", attributes={"gen_ai.operation.name": "chat"}):
        pass
    await MyWorkflow().run(input_msg="Hello")
    langfuse.force_flush()

    names = {span["name"] for span in otlp_receiver.wait_for_spans(8)}
    assert "GET /unrelated" not in names  # Langfuse's default: unknown scopes stay out
    assert "chat gpt-x" in names  # ... except gen_ai spans
    assert {"MyWorkflow.run", "MyWorkflow.start", "state.edit", "emit StopEvent"} <= names


async def test_custom_span_filter_replaces_the_default(
    register_langfuse: Register, otlp_receiver: OTLPReceiver
) -> None:
    setup = register_langfuse(should_export_span=lambda span: span.name != "state.edit")
    await MyWorkflow().run(input_msg="Hello")
    setup.force_flush()

    names = [span["name"] for span in otlp_receiver.wait_for_spans(6)]
    assert "MyWorkflow.run" in names and "state.edit" not in names


def test_second_client_for_the_same_key_is_reported_instead_of_exporting_nothing(
    register_langfuse: Register,
) -> None:
    register_langfuse()  # the first Langfuse client for this key, as an app's own Langfuse() would be
    handlers = get_dispatcher().handlers

    with pytest.raises(LangfuseConfigurationError, match="already exists in this process"):
        register_langfuse()

    assert get_dispatcher().handlers == handlers  # the refused setup left nothing behind


async def test_private_provider_gets_a_handler_that_shutdown_removes(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    handler = langfuse.handler
    assert handler is not None and handler in get_dispatcher().handlers
    await MyWorkflow().run(input_msg="Hello")
    langfuse.force_flush()
    otlp_receiver.wait_for_spans(7)

    langfuse.shutdown()
    await MyWorkflow().run(input_msg="after shutdown")

    assert handler not in get_dispatcher().handlers
    assert len(otlp_receiver.spans()) == 7


async def test_tracing_enabled_false_turns_the_export_off(
    register_langfuse: Register, otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    setup = register_langfuse()
    await MyWorkflow().run(input_msg="Hello")

    assert (setup.client, setup.tracer_provider, setup.handler) == (None, None, None)
    assert setup.force_flush()
    assert otlp_receiver.requests == []


# -- set_global=True, as WORKFLOWS_EXPORTERS=langfuse uses it (in a fresh process: the
# -- global tracer provider can be set only once per process) -----------------------------

_SCRIPT = textwrap.dedent(
    """
    import asyncio
    from opentelemetry import trace
    from sample_workflows_langfuse import MyWorkflow
    from workflows.instrumentation.exporters import configure_exporters_from_env

    if {other_plugin_first}:
        # another backend installed the global provider before Langfuse was set up
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        other = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(other))
        trace.set_tracer_provider(provider)

    setup = configure_exporters_from_env()["langfuse"]
    assert trace.get_tracer_provider() is setup.tracer_provider
    assert setup.handler is None, "the engine's default handler follows the global provider"

    async def main():
        print(await MyWorkflow().run(input_msg="from a script"))

    asyncio.run(main())
    if {other_plugin_first}:
        print("other backend got", len(other.get_finished_spans()), "spans")
    # no flush: the Langfuse SDK flushes at interpreter exit
    """
)


@pytest.mark.parametrize("other_plugin_first", [False, True], ids=["installs-global", "shares-global"])
def test_workflows_exporters_langfuse_sends_a_script_runs_through_the_global_provider(
    otlp_receiver: OTLPReceiver, keys: tuple[str, str], other_plugin_first: bool
) -> None:
    env = {
        **os.environ,
        "WORKFLOWS_EXPORTERS": "langfuse",
        "LANGFUSE_PUBLIC_KEY": keys[0],
        "LANGFUSE_SECRET_KEY": keys[1],
        "LANGFUSE_BASE_URL": otlp_receiver.endpoint,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    script = _SCRIPT.format(other_plugin_first=other_plugin_first)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert "Processed 1 times" in done.stdout
    if other_plugin_first:
        assert "other backend got 7 spans" in done.stdout
    spans = otlp_receiver.wait_for_spans(7)
    run = next(span for span in spans if span["name"] == "MyWorkflow.run")
    assert run["attributes"]["langfuse.trace.name"] == "MyWorkflow"
    assert {span["trace_id"] for span in spans} == {run["trace_id"]}
