"""Agents, tools and plain workflows as the real ``langfuse`` package sees them: its default
export filter keeps every engine span, and the observation types the plugin gives runs,
agent steps, tool steps, tool functions and plain steps are the ones the SDK itself
writes for observations of those types (so Langfuse's agent graph draws the workflow)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langfuse import Langfuse
from langfuse._client.constants import ObservationTypeLiteral, get_observation_types_list
from langfuse._client.resource_manager import LangfuseResourceManager
from langfuse.span_filter import is_default_export_span, is_genai_span, is_known_llm_instrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.agent_workflows import Pipeline, ResearchAgent
from support.otlp_receiver import OTLPReceiver
from workflows_langfuse import LangfuseSetup
from workflows_langfuse.mapping import langfuse_attributes

from workflows.instrumentation import OpenTelemetryHandler, get_dispatcher
from workflows.instrumentation.dispatcher import _ensure_configured

TYPE = "langfuse.observation.type"


@pytest.fixture
def sdk_client() -> Iterator[tuple[Langfuse, TracerProvider, InMemorySpanExporter, InMemorySpanExporter]]:
    """A real Langfuse client with its own processor and default span filter, exporting
    into memory (what it would send), next to an unfiltered copy of every span."""
    suffix = uuid.uuid4().hex[:12]
    provider = TracerProvider()
    everything = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(everything))
    sent = InMemorySpanExporter()
    client = Langfuse(
        public_key=f"pk-lf-{suffix}",
        secret_key=f"sk-lf-{suffix}",
        base_url="http://127.0.0.1:9",  # never reached: the exporter is in memory
        tracer_provider=provider,
        span_exporter=sent,
    )
    yield client, provider, sent, everything
    client.shutdown()
    provider.shutdown()
    LangfuseResourceManager.reset()


@pytest.fixture
def traced_into(sdk_client: Any) -> Iterator[OpenTelemetryHandler]:
    """The engine's handler recording into the Langfuse client's provider, alone on the
    root dispatcher for the test."""
    _ensure_configured()
    root = get_dispatcher()
    saved = root.handlers
    for handler in saved:
        root.remove_handler(handler)
    handler = OpenTelemetryHandler(tracer_provider=sdk_client[1], metrics=False)
    root.add_handler(handler)
    yield handler
    root.remove_handler(handler)
    for handler in saved:
        root.add_handler(handler)


async def test_the_sdk_default_filter_keeps_every_engine_span(sdk_client: Any, traced_into: Any) -> None:
    client, provider, sent, everything = sdk_client
    await ResearchAgent().run(topic="otel")
    await Pipeline().run(text="x")
    client.flush()

    recorded = everything.get_finished_spans()
    assert len(recorded) >= 15
    assert all(is_default_export_span(span) for span in recorded)
    assert sorted(s.name for s in sent.get_finished_spans()) == sorted(s.name for s in recorded)
    # by the scope, and by their gen_ai attributes too for runs, tools and agents: those
    # would pass even under a scope name the SDK did not know
    assert all(is_known_llm_instrumentor(span) for span in recorded)
    genai = {s.name for s in recorded if is_genai_span(s)}
    assert genai == {"ResearchAgent.run", "ResearchAgent.call_tool", "lookup", "ResearchAgent.writer", "Pipeline.run"}


def _type_of(spans: list[ReadableSpan], name: str) -> str:
    [span] = [s for s in spans if s.name == name]
    return str(langfuse_attributes(span)[TYPE])


async def test_runs_agents_tools_and_steps_get_the_types_the_sdk_writes(sdk_client: Any, traced_into: Any) -> None:
    client, provider, sent, everything = sdk_client
    await ResearchAgent().run(topic="otel")
    await Pipeline().run(text="x")
    spans = list(everything.get_finished_spans())

    types = {
        name: _type_of(spans, name)
        for name in (
            "ResearchAgent.run",
            "ResearchAgent.plan",
            "ResearchAgent.call_tool",
            "lookup",
            "ResearchAgent.writer",
            "emit ToolCall",
            "Pipeline.run",
            "Pipeline.first",
        )
    }
    assert types == {
        "ResearchAgent.run": "agent",
        "ResearchAgent.plan": "chain",
        "ResearchAgent.call_tool": "tool",
        "lookup": "tool",
        "ResearchAgent.writer": "agent",
        "emit ToolCall": "event",
        "Pipeline.run": "chain",
        "Pipeline.first": "chain",
    }
    assert set(types.values()) <= set(get_observation_types_list(ObservationTypeLiteral))

    # The SDK's own observations of these types carry the same key and value.
    everything.clear()
    for kind in sorted(set(types.values())):
        if kind == "event":
            client.create_event(name=f"sdk {kind}")
        else:
            client.start_observation(name=f"sdk {kind}", as_type=kind).end()
    written = {s.name: (s.attributes or {}).get(TYPE) for s in everything.get_finished_spans()}
    assert written == {f"sdk {kind}": kind for kind in set(types.values())}


async def test_the_wire_carries_the_types_and_the_gen_ai_attributes(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    await ResearchAgent().run(topic="otel")
    assert langfuse.force_flush()

    spans = {span["name"]: span["attributes"] for span in otlp_receiver.wait_for_spans(9)}
    run, tool, function, writer = (
        spans["ResearchAgent.run"],
        spans["ResearchAgent.call_tool"],
        spans["lookup"],
        spans["ResearchAgent.writer"],
    )
    assert (run[TYPE], run["gen_ai.operation.name"], run["gen_ai.agent.name"]) == ("agent", "invoke_agent", "ResearchAgent")
    assert run["gen_ai.conversation.id"] == run["langfuse.session.id"]
    assert (tool[TYPE], tool["gen_ai.operation.name"], tool["gen_ai.tool.name"]) == ("tool", "execute_tool", "search")
    assert tool["langfuse.observation.metadata.tool_call_id"] == "call_7"
    assert (function[TYPE], function["gen_ai.tool.call.id"]) == ("tool", "call_7")
    assert (writer[TYPE], writer["gen_ai.agent.name"]) == ("agent", "writer")
    assert spans["ResearchAgent.plan"][TYPE] == "chain"


def test_a_span_with_a_gen_ai_operation_and_no_kind_is_typed_by_the_operation() -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    common = {"workflow.name": "W", "workflow.run_id": "r", "workflow.session_id": "s"}
    with tracer.start_as_current_span("fn", attributes={**common, "gen_ai.operation.name": "execute_tool"}):
        pass
    with tracer.start_as_current_span("sub", attributes={**common, "gen_ai.operation.name": "invoke_agent"}):
        pass
    with tracer.start_as_current_span("plain", attributes={**common, "openinference.span.kind": "CHAIN"}):
        pass
    provider.shutdown()
    spans = list(exporter.get_finished_spans())
    assert [_type_of(spans, n) for n in ("fn", "sub", "plain")] == ["tool", "agent", "span"]
