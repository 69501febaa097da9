"""The shared test servers: the scripted OpenAI server and the OTLP capture receiver."""

from __future__ import annotations

import json

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from support.otlp_receiver import OTLPReceiver

from workflows.testing.openai_server import ScriptedOpenAIServer, ScriptedReply, ScriptedToolCall


def _client(server: ScriptedOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def test_plain_reply_echoes_the_model_and_reports_usage(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add_reply(ScriptedReply.text("Paris is the capital.", prompt_tokens=12, completion_tokens=4))

    completion = _client(openai_server).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Capital of France?"}]
    )

    assert completion.model == "gpt-test"
    assert completion.choices[0].message.content == "Paris is the capital."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        12,
        4,
        16,
    )
    [request] = openai_server.chat_requests
    assert request["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-test"


def test_default_usage_counts_words_of_request_and_reply(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add_reply("one two three")

    completion = _client(openai_server).chat.completions.create(
        model="m", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "count to three"}]
    )

    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 3)


def test_tool_call_reply_carries_function_name_and_json_arguments(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add_reply(ScriptedReply.tool_call("get_weather", {"city": "Paris"}, id="call_1"))

    completion = _client(openai_server).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Weather in Paris?"}]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.id == "call_1"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_streaming_sends_text_in_pieces_and_a_final_usage_chunk(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add_reply(ScriptedReply.text("It is sunny today", prompt_tokens=7, completion_tokens=4))

    stream = _client(openai_server).chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Weather?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It is sunny today"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11
    assert all(c.model == "gpt-test" for c in chunks)


def test_streaming_tool_calls_accumulate_to_the_scripted_call(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add_reply(
        ScriptedReply.tool_calls_of([ScriptedToolCall("search", {"q": "otel"}), ("lookup", {"id": 3})])
    )

    stream = _client(openai_server).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "go"}], stream=True
    )
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    finish = None
    for chunk in stream:
        assert chunk.usage is None
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            if delta_call.function and delta_call.function.name:
                names[delta_call.index] = delta_call.function.name
            if delta_call.function and delta_call.function.arguments:
                arguments[delta_call.index] = arguments.get(delta_call.index, "") + delta_call.function.arguments
        finish = chunk.choices[0].finish_reason or finish

    assert names == {0: "search", 1: "lookup"}
    assert {i: json.loads(a) for i, a in arguments.items()} == {0: {"q": "otel"}, 1: {"id": 3}}
    assert finish == "tool_calls"


def test_responder_answers_when_the_script_is_empty(openai_server: ScriptedOpenAIServer) -> None:
    def responder(request: dict) -> ScriptedReply | str:
        last = request["messages"][-1]
        if last["role"] == "tool":
            return f"The tool said {last['content']}"
        return ScriptedReply.tool_call("lookup", {"q": last["content"]})

    openai_server.responder = responder
    client = _client(openai_server)
    messages: list = [{"role": "user", "content": "otel"}]

    first = client.chat.completions.create(model="m", messages=messages)
    call = (first.choices[0].message.tool_calls or [])[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "42"},
    ]
    second = client.chat.completions.create(model="m", messages=messages)

    assert call.function.name == "lookup"
    assert second.choices[0].message.content == "The tool said 42"
    assert len(openai_server.chat_requests) == 2


def test_exhausted_script_answers_500_with_a_clear_message(openai_server: ScriptedOpenAIServer) -> None:
    with pytest.raises(openai.InternalServerError, match="script is exhausted"):
        _client(openai_server).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


def test_models_endpoint_lists_the_configured_models() -> None:
    with ScriptedOpenAIServer(models=["a-model", "b-model"]) as server:
        models = _client(server).models.list()
        assert [m.id for m in models.data] == ["a-model", "b-model"]


def test_stopped_server_refuses_connections() -> None:
    server = ScriptedOpenAIServer(["hello"]).start()
    url = server.base_url
    server.stop()
    client = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


def _export_two_spans(receiver: OTLPReceiver, **exporter_args: object) -> SpanExportResult:
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("receiver.test")
    child_attributes = {"n": 3, "tags": ["a", "b"], "ok": True}
    with (
        tracer.start_as_current_span("parent"),
        tracer.start_as_current_span("child", attributes=child_attributes) as child,
    ):
        child.add_event("something", {"k": "v"})
        child.set_status(Status(StatusCode.ERROR, "boom"))
    exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", **exporter_args)  # type: ignore[arg-type]
    try:
        return exporter.export(finished.get_finished_spans())
    finally:
        exporter.shutdown()


def test_otlp_receiver_decodes_gzipped_spans_into_flat_dicts(otlp_receiver: OTLPReceiver) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression

    _export_two_spans(otlp_receiver, compression=Compression.Gzip, headers={"x-test": "yes"})

    spans = otlp_receiver.wait_for_spans(2)
    by_name = {s["name"]: s for s in spans}
    child, parent = by_name["child"], by_name["parent"]
    assert child["parent_span_id"] == parent["span_id"]
    assert parent["parent_span_id"] is None
    assert child["trace_id"] == parent["trace_id"] and len(child["trace_id"]) == 32
    assert child["scope"] == "receiver.test"
    assert child["attributes"] == {"n": 3, "tags": ["a", "b"], "ok": True}
    assert child["status"] == {"code": "ERROR", "message": "boom"}
    assert child["events"] == [{"name": "something", "attributes": {"k": "v"}}]
    request = otlp_receiver.requests[0]
    assert request.path == "/v1/traces"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-test"] == "yes"


def test_otlp_receiver_answers_the_configured_error_status(otlp_receiver: OTLPReceiver) -> None:
    otlp_receiver.status = 401

    result = _export_two_spans(otlp_receiver)

    assert result is SpanExportResult.FAILURE
    [request] = otlp_receiver.requests
    assert request.status == 401
    assert {s["name"] for s in otlp_receiver.spans()} == {"parent", "child"}


def test_wait_for_times_out_with_what_arrived(otlp_receiver: OTLPReceiver) -> None:
    with pytest.raises(TimeoutError, match="0 requests captured"):
        otlp_receiver.wait_for(lambda r: r.spans(), timeout=0.1)
