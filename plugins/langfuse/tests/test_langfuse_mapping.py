"""The attribute mapping on finished spans made with the real OpenTelemetry SDK, for the
cases the end-to-end tests do not produce: GenAI-convention LLM spans, cancelled runs,
agent workflows, foreign spans, environment and release."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from workflows_langfuse.mapping import langfuse_attributes, span_role

COMMON: dict[str, Any] = {"workflow.name": "Agent", "workflow.run_id": "r1", "workflow.session_id": "s1"}
RUN: dict[str, Any] = {**COMMON, "workflow.resumed": False}


def _finished(name: str, attributes: dict[str, Any], status: Status | None = None) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span(name, attributes=attributes) as span:
        if status is not None:
            span.set_status(status)
    provider.shutdown()
    [finished] = exporter.get_finished_spans()
    return finished


def test_genai_convention_llm_span_is_a_generation_with_summed_usage() -> None:
    span = _finished(
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 7,
            "gen_ai.usage.output_tokens": 3,
        },
    )

    added = langfuse_attributes(span)

    assert span_role(span.attributes or {}) == "llm"
    assert added["langfuse.observation.type"] == "generation"
    assert added["langfuse.observation.model.name"] == "gpt-4o-2024-08-06"
    assert json.loads(added["langfuse.observation.usage_details"]) == {"input": 7, "output": 3, "total": 10}


def test_llm_messages_with_tool_calls_and_tools_keep_the_openai_shape() -> None:
    span = _finished(
        "ChatCompletion",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "m",
            "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "lookup"}}),
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "find otel",
            "llm.input_messages.1.message.role": "tool",
            "llm.input_messages.1.message.tool_call_id": "call_1",
            "llm.input_messages.1.message.content": "42",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_2",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"q": "otel"}',
        },
    )

    added = langfuse_attributes(span)

    assert json.loads(added["langfuse.observation.input"]) == {
        "tools": [{"type": "function", "function": {"name": "lookup"}}],
        "messages": [
            {"role": "user", "content": "find otel"},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
    }
    assert json.loads(added["langfuse.observation.output"]) == {
        "role": "assistant",
        "tool_calls": [
            {"type": "function", "id": "call_2", "function": {"name": "lookup", "arguments": '{"q": "otel"}'}}
        ],
    }


def test_agent_workflow_run_is_an_agent_observation() -> None:
    span = _finished("Agent.run", {**RUN, "openinference.span.kind": "AGENT", "workflow.run.status": "completed"})

    assert langfuse_attributes(span)["langfuse.observation.type"] == "agent"


def test_cancelled_run_and_interrupted_step_are_warnings() -> None:
    run = _finished("Agent.run", {**RUN, "workflow.run.status": "cancelled"})
    step = _finished(
        "Agent.think",
        {**COMMON, "workflow.step.attempt": 1, "workflow.step.outcome": "cancelled", "workflow.step.name": "think"},
    )

    assert langfuse_attributes(run)["langfuse.observation.level"] == "WARNING"
    assert "cancelled" in langfuse_attributes(run)["langfuse.observation.status_message"]
    assert span_role(step.attributes or {}) == "step"
    assert langfuse_attributes(step)["langfuse.observation.level"] == "WARNING"


def test_timed_out_run_is_an_error_with_the_status_description() -> None:
    span = _finished(
        "Agent.run", {**RUN, "workflow.run.status": "timed_out"}, Status(StatusCode.ERROR, "the run timed out")
    )

    added = langfuse_attributes(span)

    assert (added["langfuse.observation.level"], added["langfuse.observation.status_message"]) == (
        "ERROR",
        "the run timed out",
    )


def test_wait_and_user_spans_are_plain_spans() -> None:
    wait = _finished("wait Approval", {**COMMON, "workflow.wait.id": "w1", "workflow.step.name": "ask"})
    user = _finished("fetch_page", {**COMMON, "openinference.span.kind": "CHAIN"})

    assert span_role(wait.attributes or {}) == "wait"
    assert langfuse_attributes(wait)["langfuse.observation.type"] == "span"
    assert span_role(user.attributes or {}) == "workflow"
    assert langfuse_attributes(user)["langfuse.observation.type"] == "span"


def test_foreign_span_is_left_alone_except_environment_and_release() -> None:
    span = _finished("GET /", {"http.method": "GET"})

    assert langfuse_attributes(span) == {}
    assert langfuse_attributes(span, environment="prod", release="1.0") == {
        "langfuse.environment": "prod",
        "langfuse.release": "1.0",
    }


def test_child_run_does_not_claim_the_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("Parent.step"),
        tracer.start_as_current_span("Child.run", attributes={**RUN, "workflow.run.status": "completed"}),
    ):
        pass
    child = next(s for s in exporter.get_finished_spans() if s.name == "Child.run")

    added = langfuse_attributes(child)

    assert added["langfuse.observation.type"] == "chain"
    assert not any(key.startswith("langfuse.trace.") for key in added)
