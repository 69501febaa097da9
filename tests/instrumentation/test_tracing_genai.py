"""OpenTelemetry's GenAI conventions on real workflows, through the real SDK (in memory):
an agent workflow with tool steps, a tool function and an agent step, and a plain one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.context import Context as OtelContext
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.util.types import Attributes

from instrumentation.tracing_support import Tracing, make_tracing
from support.agent_workflows import Pipeline, ResearchAgent, ToolCall
from workflows import Workflow, step
from workflows.errors import WorkflowTimeoutError
from workflows.events import StartEvent, StopEvent
from workflows.instrumentation import get_dispatcher, semconv
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_none


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def gen_ai(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in attrs(span).items() if k.startswith("gen_ai.") or k == "error.type"}


@pytest.fixture
def swap_tracing(isolated_root: None):
    """Put a handler built with ``make_tracing(**options)`` alone on the root dispatcher."""
    made: list[Tracing] = []

    def build(**options: Any) -> Tracing:
        setup = make_tracing(**options)
        get_dispatcher().add_handler(setup.handler)
        made.append(setup)
        return setup

    yield build
    for setup in made:
        get_dispatcher().remove_handler(setup.handler)
        setup.provider.shutdown()
        setup.meter_provider.shutdown()


async def test_an_agent_run_is_invoke_agent_with_its_conversation(tracing: Tracing) -> None:
    assert await ResearchAgent().run(topic="otel") == "report: notes on otel"

    run = tracing.one("ResearchAgent.run")
    session = attrs(run)["session.id"]
    assert gen_ai(run) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "ResearchAgent",
        "gen_ai.conversation.id": session,
    }
    assert attrs(run)["openinference.span.kind"] == "AGENT"


async def test_a_tool_step_is_execute_tool_with_the_call_it_ran(tracing: Tracing) -> None:
    await ResearchAgent().run(topic="otel")

    tool = tracing.one("ResearchAgent.call_tool")
    a = attrs(tool)
    assert a["openinference.span.kind"] == "TOOL"
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "search"  # the input event's tool_name, not the step's name
    assert a["gen_ai.tool.call.id"] == "call_7"
    assert json.loads(a["gen_ai.tool.call.arguments"]) == {
        "tool_name": "search",
        "tool_call_id": "call_7",
        "query": "otel",
    }
    assert a["gen_ai.tool.call.arguments"] == a["input.value"]
    assert json.loads(a["gen_ai.tool.call.result"]) == {"tool_call_id": "call_7", "text": "notes on otel"}
    assert "error.type" not in a


async def test_a_tool_function_is_execute_tool_under_its_step(tracing: Tracing) -> None:
    await ResearchAgent().run(topic="otel")

    step_span = tracing.one("ResearchAgent.call_tool")
    function = tracing.one("lookup")
    assert function.parent is not None and function.parent.span_id == step_span.context.span_id
    a = attrs(function)
    assert a["openinference.span.kind"] == "TOOL"
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "lookup"
    assert a["gen_ai.tool.call.id"] == "call_7"  # the argument named tool_call_id
    assert json.loads(a["gen_ai.tool.call.arguments"]) == {"query": "otel", "tool_call_id": "call_7"}
    assert json.loads(a["gen_ai.tool.call.result"]) == {"found": "notes on otel"}


async def test_an_agent_step_is_an_invoke_agent_child(tracing: Tracing) -> None:
    await ResearchAgent().run(topic="otel")

    run = tracing.one("ResearchAgent.run")
    writer = tracing.one("ResearchAgent.writer")
    assert writer.parent is not None and writer.parent.span_id == run.context.span_id
    assert gen_ai(writer) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "writer",
        "gen_ai.conversation.id": attrs(run)["session.id"],
    }
    assert attrs(writer)["openinference.span.kind"] == "AGENT"
    assert attrs(writer)["agent.name"] == "writer"


async def test_plain_steps_emits_and_state_carry_no_gen_ai_attribute(tracing: Tracing) -> None:
    await ResearchAgent().run(topic="otel")

    marked = {"ResearchAgent.run", "ResearchAgent.call_tool", "ResearchAgent.writer", "lookup"}
    others = [s for s in tracing.spans() if s.name not in marked]
    assert {s.name for s in others} >= {"ResearchAgent.plan", "emit ToolCall", "emit StartEvent"}
    assert [s.name for s in others if gen_ai(s)] == []


async def test_a_plain_workflow_is_invoke_workflow(tracing: Tracing) -> None:
    assert await Pipeline().run(text="hi") == "HI"

    run = tracing.one("Pipeline.run")
    assert gen_ai(run) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "Pipeline",
        "gen_ai.agent.name": "Pipeline",
        "gen_ai.conversation.id": attrs(run)["session.id"],
    }
    assert attrs(run)["openinference.span.kind"] == "CHAIN"
    # a plain step's input has a tool_call_id field, yet it is no tool
    assert [s.name for s in tracing.spans() if s is not run and gen_ai(s)] == []


async def test_runs_sharing_a_context_share_the_conversation(tracing: Tracing) -> None:
    from workflows import Context

    workflow = Pipeline()
    ctx = Context(workflow)
    await workflow.run(ctx=ctx, text="a")
    await workflow.run(ctx=ctx, text="b")

    conversations = {attrs(s)["gen_ai.conversation.id"] for s in tracing.named("Pipeline.run")}
    assert len(tracing.named("Pipeline.run")) == 2 and len(conversations) == 1


class _RecordingSampler(Sampler):
    """Keeps what a sampler is shown when each span starts."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}

    def should_sample(
        self,
        parent_context: OtelContext | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        self.seen.setdefault(name, dict(attributes or {}))
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "recording"


async def test_samplers_see_the_gen_ai_attributes_at_span_start(isolated_root: None) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from workflows.instrumentation import OpenTelemetryHandler

    sampler = _RecordingSampler()
    provider = TracerProvider(sampler=sampler)
    handler = OpenTelemetryHandler(tracer_provider=provider, metrics=False)
    get_dispatcher().add_handler(handler)
    try:
        await ResearchAgent().run(topic="otel")
    finally:
        get_dispatcher().remove_handler(handler)
        provider.shutdown()

    assert sampler.seen["ResearchAgent.run"]["gen_ai.operation.name"] == "invoke_agent"
    assert sampler.seen["ResearchAgent.run"]["gen_ai.agent.name"] == "ResearchAgent"
    assert "gen_ai.conversation.id" in sampler.seen["ResearchAgent.run"]
    assert sampler.seen["ResearchAgent.call_tool"]["gen_ai.tool.call.id"] == "call_7"
    assert sampler.seen["lookup"]["gen_ai.tool.name"] == "lookup"


# -- content capture and redaction ----------------------------------------------------------
async def test_tool_arguments_and_results_follow_the_content_capture_switch(swap_tracing: Any) -> None:
    tracing = swap_tracing(capture_content=False)
    await ResearchAgent().run(topic="otel")

    for name in ("ResearchAgent.call_tool", "lookup"):
        a = attrs(tracing.one(name))
        assert a["gen_ai.operation.name"] == "execute_tool"
        assert a["gen_ai.tool.call.id"] == "call_7"  # ids are kept, like event ids
        assert "gen_ai.tool.call.arguments" not in a and "gen_ai.tool.call.result" not in a


async def test_tool_arguments_are_masked_and_redacted_like_any_payload(swap_tracing: Any) -> None:
    def redact(value: Any) -> Any:
        if isinstance(value, dict) and "query" in value:
            return {**value, "query": "[redacted]"}
        return value

    tracing = swap_tracing(redact=redact)
    dispatcher = get_dispatcher("tests.genai.redaction")

    @dispatcher.span(kind="TOOL", name="fetch")
    async def fetch(query: str, api_key: str) -> str:
        return "ok"

    class Fetching(Workflow):
        @step(kind="TOOL")
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result=await fetch(ev.query, api_key="sk-secret-value"))

    await Fetching().run(query="private question")

    step_args = json.loads(attrs(tracing.one("Fetching.go"))["gen_ai.tool.call.arguments"])
    assert step_args == {"query": "[redacted]"}
    function_args = json.loads(attrs(tracing.one("fetch"))["gen_ai.tool.call.arguments"])
    assert function_args == {"query": "[redacted]", "api_key": "***"}


# -- errors -----------------------------------------------------------------------------------
class Broken(Workflow):
    is_agent = True

    @step(kind="TOOL", retry_policy=retry_policy(stop=stop_after_attempt(2), wait=wait_none()))
    async def call(self, ev: StartEvent) -> StopEvent:
        raise KeyError("no such tool")


async def test_failures_carry_error_type_where_the_status_is_error(tracing: Tracing) -> None:
    with pytest.raises(KeyError, match="no such tool"):
        await Broken().run()

    run = tracing.one("Broken.run")
    assert attrs(run)["error.type"] == "KeyError"
    assert run.status.status_code is StatusCode.ERROR
    first, last = sorted(tracing.named("Broken.call"), key=lambda s: attrs(s)["workflow.step.attempt"])
    # a retried attempt is not a failure of the run: no ERROR status, no error.type
    assert attrs(first)["workflow.step.outcome"] == "retrying" and "error.type" not in attrs(first)
    assert attrs(last)["error.type"] == "KeyError" and last.status.status_code is StatusCode.ERROR
    assert all("error.type" not in attrs(s) for s in tracing.spans() if s.status.status_code is not StatusCode.ERROR)


async def test_a_tool_function_that_raises_has_error_type(tracing: Tracing) -> None:
    dispatcher = get_dispatcher("tests.genai.errors")

    @dispatcher.span(kind="TOOL")
    def divide(a: int, b: int) -> float:
        return a / b

    class Dividing(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            try:
                divide(1, 0)
            except ZeroDivisionError:
                return StopEvent(result="handled")
            return StopEvent(result="no error")

    assert await Dividing().run() == "handled"
    span = tracing.one("test_a_tool_function_that_raises_has_error_type.<locals>.divide")
    assert attrs(span)["error.type"] == "ZeroDivisionError"
    assert "gen_ai.tool.call.result" not in attrs(span)


async def test_a_timed_out_run_has_error_type(tracing: Tracing) -> None:
    class Slow(Workflow):
        @step
        async def wait(self, ev: StartEvent) -> StopEvent:
            await asyncio.sleep(10)
            return StopEvent()

    with pytest.raises(WorkflowTimeoutError):
        await Slow(timeout=0.05).run()

    assert attrs(tracing.one("Slow.run"))["error.type"] == "workflows.errors.WorkflowTimeoutError"
    assert attrs(tracing.one("Slow.wait"))["error.type"] == "timeout"


# -- span names under OpenTelemetry's opt-in ---------------------------------------------------
CONVENTION_NAMES = {
    "invoke_agent ResearchAgent",
    "execute_tool search",
    "execute_tool lookup",
    "invoke_agent writer",
    "invoke_workflow Pipeline",
}
DOCUMENTED_NAMES = {"ResearchAgent.run", "ResearchAgent.call_tool", "lookup", "ResearchAgent.writer", "Pipeline.run"}


@pytest.mark.parametrize(
    ("opt_in", "expected", "unexpected"),
    [
        ("http, gen_ai_latest_experimental", CONVENTION_NAMES, DOCUMENTED_NAMES),
        ("http", DOCUMENTED_NAMES, CONVENTION_NAMES),
        ("", DOCUMENTED_NAMES, CONVENTION_NAMES),
    ],
)
async def test_span_names_follow_the_conventions_only_under_the_opt_in(
    swap_tracing: Any, monkeypatch: pytest.MonkeyPatch, opt_in: str, expected: set[str], unexpected: set[str]
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", opt_in)
    tracing = swap_tracing()
    await ResearchAgent().run(topic="otel")
    await Pipeline().run(text="x")

    names = {s.name for s in tracing.spans()}
    assert expected <= names and not unexpected & names
    # spans the conventions have no name for keep theirs either way
    assert {"ResearchAgent.plan", "Pipeline.first", "emit ToolCall"} <= names


# -- declaring kinds ----------------------------------------------------------------------------
def test_dispatcher_span_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"@dispatcher.span\(kind='WRENCH'\).*TOOL"):

        @get_dispatcher().span(kind="WRENCH")  # type: ignore[arg-type]
        def f() -> None: ...


async def test_a_tool_call_id_is_read_from_an_argument_s_fields(tracing: Tracing) -> None:
    dispatcher = get_dispatcher("tests.genai.fields")

    @dispatcher.span(kind="tool", name="run_call")  # lower case is accepted
    async def run_call(call: ToolCall) -> str:
        return call.query

    class Calling(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result=await run_call(ToolCall(tool_name="t", tool_call_id="c-1", query="q")))

    await Calling().run()
    a = attrs(tracing.one("run_call"))
    assert (a["openinference.span.kind"], a["gen_ai.tool.name"], a["gen_ai.tool.call.id"]) == ("TOOL", "run_call", "c-1")


def test_the_names_are_those_of_opentelemetry_semantic_conventions() -> None:
    gen_ai_attributes = pytest.importorskip("opentelemetry.semconv._incubating.attributes.gen_ai_attributes")
    from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

    assert semconv.OPERATION == gen_ai_attributes.GEN_AI_OPERATION_NAME
    assert semconv.AGENT_NAME == gen_ai_attributes.GEN_AI_AGENT_NAME
    assert semconv.WORKFLOW_NAME == gen_ai_attributes.GEN_AI_WORKFLOW_NAME
    assert semconv.CONVERSATION_ID == gen_ai_attributes.GEN_AI_CONVERSATION_ID
    assert semconv.TOOL_NAME == gen_ai_attributes.GEN_AI_TOOL_NAME
    assert semconv.TOOL_CALL_ID == gen_ai_attributes.GEN_AI_TOOL_CALL_ID
    assert semconv.TOOL_CALL_ARGUMENTS == gen_ai_attributes.GEN_AI_TOOL_CALL_ARGUMENTS
    assert semconv.TOOL_CALL_RESULT == gen_ai_attributes.GEN_AI_TOOL_CALL_RESULT
    assert semconv.ERROR_TYPE == ERROR_TYPE
    operations = {v.value for v in gen_ai_attributes.GenAiOperationNameValues}
    assert {semconv.INVOKE_AGENT, semconv.INVOKE_WORKFLOW, semconv.EXECUTE_TOOL} <= operations


async def test_every_gen_ai_attribute_set_is_in_the_docs_table(tracing: Tracing) -> None:
    from pathlib import Path

    await ResearchAgent().run(topic="otel")
    await Pipeline().run(text="x")
    with pytest.raises(KeyError):
        await Broken().run()

    set_keys = {k for s in tracing.spans() for k in gen_ai(s)}
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tracing.md").read_text()
    section = docs[docs.index("## OpenTelemetry GenAI conventions") :]
    table = section[: section.index("\n\n", section.index("| attribute | on |"))]
    documented = {key for key in set_keys if f"`{key}`" in table}
    assert set_keys - documented == set()
    assert "gen_ai.tool.call.result" in set_keys and "error.type" in set_keys
