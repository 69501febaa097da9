"""What the plugin really sends to Langfuse, captured on the wire and decoded.

Each test runs real workflows with the plugin registered against a local OTLP receiver
(standing in for Langfuse), flushes, and checks the decoded spans for the attributes
Langfuse reads: trace name, input and output, session, observation types, levels and
status messages, the state diff, and generations with model and token usage.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor
from sample_workflows_langfuse import (
    AskModel,
    FailingWorkflow,
    FlakyWorkflow,
    MyWorkflow,
    Pipeline,
)
from support.otlp_receiver import OTLPReceiver
from workflows_langfuse import LangfuseSetup

from workflows import Context
from workflows.testing.openai_server import ScriptedOpenAIServer, ScriptedReply

Span = dict[str, Any]


def _flushed_spans(setup: LangfuseSetup, receiver: OTLPReceiver, count: int) -> list[Span]:
    assert setup.force_flush(), "the Langfuse export did not finish in time"
    return receiver.wait_for_spans(count)


def _named(spans: list[Span], name: str) -> list[Span]:
    return [span for span in spans if span["name"] == name]


def _one(spans: list[Span], name: str) -> Span:
    [span] = _named(spans, name)
    return span


def _observation_type(span: Span) -> str:
    return span["attributes"]["langfuse.observation.type"]


def _shown(span: Span, direction: str) -> Any:
    """An observation's input or output as Langfuse picks it: its own key first, then
    OpenInference's ``input.value`` / ``output.value``; JSON decoded when it is JSON."""
    attributes = span["attributes"]
    value = attributes.get(f"langfuse.observation.{direction}", attributes.get(f"{direction}.value"))
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


# -- the quickstart --------------------------------------------------------------------


async def test_export_goes_to_the_langfuse_otlp_path_with_basic_auth(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver, keys: tuple[str, str]
) -> None:
    await MyWorkflow().run(input_msg="Hello, world!")
    _flushed_spans(langfuse, otlp_receiver, 1)

    request = otlp_receiver.requests[0]
    assert request.path == "/api/public/otel/v1/traces"
    scheme, credentials = request.headers["authorization"].split(" ", 1)
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{keys[0]}:{keys[1]}"
    assert request.headers["x-langfuse-ingestion-version"] == "4"
    assert request.headers["x-langfuse-public-key"] == keys[0]
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"


async def test_quickstart_run_is_a_trace_named_after_the_workflow_with_its_input_and_output(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    result = await MyWorkflow().run(input_msg="Hello, world!")
    spans = _flushed_spans(langfuse, otlp_receiver, 7)

    run = _one(spans, "MyWorkflow.run")
    attributes = run["attributes"]
    assert run["parent_span_id"] is None
    assert attributes["langfuse.trace.name"] == "MyWorkflow"
    assert json.loads(attributes["langfuse.trace.input"]) == {"input_msg": "Hello, world!"}
    assert attributes["langfuse.trace.output"] == result
    assert attributes["langfuse.observation.type"] == "chain"
    assert _shown(run, "input") == {"input_msg": "Hello, world!"}
    assert _shown(run, "output") == result
    assert attributes["langfuse.trace.metadata.run_id"] == attributes["workflow.run_id"]
    # every span of the run reached Langfuse, in the run's trace
    assert {span["trace_id"] for span in spans} == {run["trace_id"]}
    assert sorted(span["name"] for span in spans) == sorted(
        [
            "MyWorkflow.run",
            "MyWorkflow.start",
            "MyWorkflow.process",
            "emit StartEvent",
            "emit MyEvent",
            "emit StopEvent",
            "state.edit",
        ]
    )


async def test_quickstart_steps_events_and_state_change_have_fitting_observation_types(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    await MyWorkflow().run(input_msg="Hello")
    spans = _flushed_spans(langfuse, otlp_receiver, 7)

    start, process = _one(spans, "MyWorkflow.start"), _one(spans, "MyWorkflow.process")
    assert _observation_type(start) == _observation_type(process) == "chain"
    assert _shown(start, "input") == {"input_msg": "Hello"}
    assert _shown(start, "output") == {"msg": ["Hello"]}
    assert start["attributes"]["langfuse.observation.metadata.step"] == "start"

    emitted = _one(spans, "emit MyEvent")
    assert _observation_type(emitted) == "event"
    assert emitted["parent_span_id"] == start["span_id"]
    assert _shown(emitted, "input") == {"msg": ["Hello"]}
    assert emitted["attributes"]["langfuse.observation.metadata.event_targets"] == "process"

    state = _one(spans, "state.edit")
    assert _observation_type(state) == "event"
    assert state["parent_span_id"] == start["span_id"]
    assert _shown(state, "output") == [{"op": "replace", "path": "/num_runs", "value": 1}]
    assert state["attributes"]["langfuse.observation.metadata.state_keys"] == "num_runs"


async def test_runs_sharing_a_context_share_a_session_on_every_span(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    workflow = MyWorkflow()
    ctx: Context[Any] = Context(workflow)
    await workflow.run(input_msg="Hello", ctx=ctx)
    await workflow.run(input_msg="Hello", ctx=ctx)
    spans = _flushed_spans(langfuse, otlp_receiver, 14)

    runs = _named(spans, "MyWorkflow.run")
    assert len(runs) == 2
    assert runs[0]["trace_id"] != runs[1]["trace_id"]
    sessions = {span["attributes"]["langfuse.session.id"] for span in spans}
    assert sessions == {runs[0]["attributes"]["workflow.session_id"]}
    # the second run's state change shows the counter going from 1 to 2
    diffs = sorted(_shown(state, "output")[0]["value"] for state in _named(spans, "state.edit"))
    assert diffs == [1, 2]


async def test_engine_attributes_are_kept_next_to_langfuse_ones(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    await MyWorkflow().run(input_msg="Hello")
    spans = _flushed_spans(langfuse, otlp_receiver, 7)

    for span in spans:
        attributes = span["attributes"]
        assert attributes["workflow.name"] == "MyWorkflow"
        assert attributes["workflow.session_id"] == attributes["session.id"] == attributes["langfuse.session.id"]
        assert "openinference.span.kind" in attributes
    step = _one(spans, "MyWorkflow.start")["attributes"]
    assert (step["workflow.step.name"], step["workflow.step.attempt"], step["input.mime_type"]) == (
        "start",
        1,
        "application/json",
    )


# -- failures and retries ----------------------------------------------------------------


async def test_failed_step_is_an_error_observation_with_its_message(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    with pytest.raises(Exception, match="card 4242 was declined"):
        await FailingWorkflow().run(card="4242")
    spans = _flushed_spans(langfuse, otlp_receiver, 3)

    step = _one(spans, "FailingWorkflow.charge")["attributes"]
    assert step["langfuse.observation.level"] == "ERROR"
    assert "card 4242 was declined" in step["langfuse.observation.status_message"]
    assert step["langfuse.observation.metadata.exception_type"].endswith("PaymentDeclined")
    assert "raise PaymentDeclined" in step["langfuse.observation.metadata.exception_stacktrace"]

    run = _one(spans, "FailingWorkflow.run")["attributes"]
    assert run["langfuse.observation.level"] == "ERROR"
    assert "card 4242 was declined" in run["langfuse.observation.status_message"]
    assert run["workflow.run.status"] == "failed"


async def test_retried_attempt_is_a_warning_and_the_successful_attempt_is_not(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    FlakyWorkflow.attempts = 0
    result = await FlakyWorkflow().run()
    spans = _flushed_spans(langfuse, otlp_receiver, 6)

    attempts = sorted(_named(spans, "FlakyWorkflow.fetch"), key=lambda s: s["attributes"]["workflow.step.attempt"])
    assert [a["attributes"]["workflow.step.attempt"] for a in attempts] == [1, 2]
    first, second = attempts[0]["attributes"], attempts[1]["attributes"]
    assert _shown(attempts[1], "output") == {"result": result}
    assert first["langfuse.observation.level"] == "WARNING"
    assert first["langfuse.observation.status_message"].startswith("attempt 1 failed, retried")
    assert "upstream reset the connection" in first["langfuse.observation.status_message"]
    assert "langfuse.observation.level" not in second
    assert "langfuse.observation.level" not in _one(spans, "FlakyWorkflow.run")["attributes"]
    # no observation is an error: the run recovered; the back-off is a span of its own
    assert [s["name"] for s in spans if s["attributes"].get("langfuse.observation.level") == "ERROR"] == []
    assert _one(spans, "backoff fetch")["attributes"]["langfuse.observation.type"] == "span"


# -- a child workflow ------------------------------------------------------------------


async def test_child_workflow_run_nests_under_its_step_without_renaming_the_trace(
    langfuse: LangfuseSetup, otlp_receiver: OTLPReceiver
) -> None:
    result = await Pipeline().run(document="A long document about tracing.")
    spans = _flushed_spans(langfuse, otlp_receiver, 8)

    parent_run = _one(spans, "Pipeline.run")
    step = _one(spans, "Pipeline.delegate")
    child_run = _one(spans, "Summarize.run")
    assert child_run["parent_span_id"] == step["span_id"]
    assert child_run["trace_id"] == parent_run["trace_id"] == step["trace_id"]
    assert parent_run["attributes"]["langfuse.trace.name"] == "Pipeline"
    assert json.loads(parent_run["attributes"]["langfuse.trace.output"]) == result
    assert not any(key.startswith("langfuse.trace.") for key in child_run["attributes"])
    assert _observation_type(child_run) == "chain"
    assert _shown(child_run, "output") == "A long docum"
    assert _observation_type(_one(spans, "Summarize.summarize")) == "chain"


# -- an LLM call -------------------------------------------------------------------------


@pytest.fixture
def instrumented_openai(langfuse: LangfuseSetup) -> Any:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=langfuse.tracer_provider)
    yield instrumentor
    instrumentor.uninstrument()


async def test_llm_call_is_a_generation_with_model_usage_and_messages(
    langfuse: LangfuseSetup,
    otlp_receiver: OTLPReceiver,
    openai_server: ScriptedOpenAIServer,
    instrumented_openai: Any,
) -> None:
    openai_server.add_reply(ScriptedReply.text("Paris", prompt_tokens=21, completion_tokens=1))

    workflow = AskModel(openai_server.base_url)
    ctx: Context[Any] = Context(workflow)
    assert await workflow.run(question="Capital of France?", ctx=ctx) == "Paris"
    spans = _flushed_spans(langfuse, otlp_receiver, 5)

    [generation] = [s for s in spans if s["attributes"].get("langfuse.observation.type") == "generation"]
    attributes = generation["attributes"]
    assert generation["scope"].startswith("openinference.instrumentation.openai")
    assert generation["parent_span_id"] == _one(spans, "AskModel.ask")["span_id"]
    assert attributes["langfuse.observation.model.name"] == "gpt-test"
    assert json.loads(attributes["langfuse.observation.usage_details"]) == {"input": 21, "output": 1, "total": 22}
    assert json.loads(attributes["langfuse.observation.model.parameters"])["temperature"] == 0
    assert _shown(generation, "input") == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert _shown(generation, "output") == {"role": "assistant", "content": "Paris"}
    # the call is filed under the run's session, like the engine's own spans
    run = _one(spans, "AskModel.run")["attributes"]
    assert attributes["langfuse.session.id"] == run["workflow.session_id"]
    assert attributes["langfuse.observation.metadata.run_id"] == run["workflow.run_id"]
    assert openai_server.chat_requests[0]["model"] == "gpt-test"
