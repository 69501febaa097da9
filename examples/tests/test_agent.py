"""``agent.py``: the function-calling agent, offline by default, and the trace it prints."""

from __future__ import annotations

import re

import pytest
from example_runner import Node, parse_trees, run_example
from support.otlp_receiver import OTLPReceiver

from workflows.testing.openai_server import (
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
)


@pytest.fixture(scope="module")
def output() -> str:
    return run_example("agent").stdout


def agent_run(output: str) -> Node:
    [run] = parse_trees(output, "WeatherAgent.run")
    return run


def test_agent_answers_offline_with_the_weather_of_each_city(output: str) -> None:
    answer = re.search(r"^Answer: +(.*)$", output, re.MULTILINE)

    assert answer is not None
    assert "Paris: 18 °C, light rain." in answer.group(1)
    assert "Tokyo: 24 °C, sunny." in answer.group(1)


def test_the_trace_is_one_agent_run_that_completed(output: str) -> None:
    assert re.search(r"^trace [0-9a-f]{32}  \(\d+ spans, session [0-9a-f]+\)$", output, re.MULTILINE)
    run = agent_run(output)
    assert run.text.startswith("WeatherAgent.run  AGENT")
    assert run.text.endswith("completed")


def test_each_llm_call_is_a_child_of_the_step_that_made_it(output: str) -> None:
    run = agent_run(output)
    steps = [node for node in run.children if node.text.startswith("WeatherAgent.call_llm")]
    assert len(steps) == 2  # ask for tools, then answer
    calls = [step.find("ChatCompletion")[0] for step in steps]
    assert len(run.find("ChatCompletion")) == 2  # none anywhere else
    for call in calls:
        assert call.text.startswith("ChatCompletion  LLM scripted-model")
        assert re.search(r"in: \d+ messages, \d+ tokens  out: \d+ tokens", call.text)
    assert "in: 2 messages" in calls[0].text
    assert 'get_weather(city="Paris"), get_weather(city="Tokyo")' in calls[0].text
    assert "in: 5 messages" in calls[1].text  # system, user, assistant's calls, two results
    assert '"Here is the weather' in calls[1].text


def test_each_tool_call_has_its_own_step_and_span(output: str) -> None:
    run = agent_run(output)
    tool_steps = [node for node in run.children if node.text.startswith("WeatherAgent.call_tool")]

    tool_spans = sorted(step.find("get_weather")[0].text for step in tool_steps)
    assert len(tool_spans) == 2
    assert '{"city":"Paris"} → Paris: 18 °C, light rain.' in tool_spans[0]
    assert '{"city":"Tokyo"} → Tokyo: 24 °C, sunny.' in tool_spans[1]


def test_output_ends_with_how_to_see_the_trace_in_phoenix_or_langfuse(output: str) -> None:
    last_line = output.rstrip().splitlines()[-1]

    assert "python examples/phoenix" in last_line
    assert "WORKFLOWS_EXPORTERS=langfuse" in last_line and "LANGFUSE_PUBLIC_KEY" in last_line


def test_a_question_without_a_city_is_answered_in_one_llm_call() -> None:
    output = run_example("agent", "Hello, who are you?").stdout

    assert "Answer:   I can tell you the weather" in output
    run = agent_run(output)
    assert len(run.find("ChatCompletion")) == 1
    assert run.find("WeatherAgent.call_tool") == []


def test_a_real_model_is_used_with_an_api_key_and_a_model_name(openai_server: ScriptedOpenAIServer) -> None:
    # The scripted server stands in for the provider: the example must reach it through
    # the openai client's own settings, and send the model it was given.
    openai_server.add_replies(
        [
            ScriptedReply(tool_calls=(ScriptedToolCall("get_weather", {"city": "Oslo"}),)),
            ScriptedReply.text("It is 9 °C and windy in Oslo."),
        ]
    )
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_server.base_url}

    output = run_example("agent", "How is Oslo?", "--model", "gpt-test", env=env).stdout

    assert "Answer:   It is 9 °C and windy in Oslo." in output
    assert "offline" not in output
    first, second = openai_server.chat_requests
    assert first["model"] == second["model"] == "gpt-test"
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": second["messages"][-2]["tool_calls"][0]["id"],
        "content": "Oslo: 9 °C, windy.",
    }
    assert "authorization" in openai_server.requests[0].headers
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-test"


def test_a_model_name_without_an_api_key_is_refused_with_what_to_set() -> None:
    result = run_example("agent", "--model", "gpt-test", expect_success=False)

    assert result.returncode == 2
    assert "set OPENAI_API_KEY" in result.stderr


def test_agent_with_workflows_exporters_sends_the_same_trace_to_langfuse(otlp_receiver: OTLPReceiver) -> None:
    pytest.importorskip("workflows_langfuse", reason="the Langfuse plugin is not installed")
    env = {
        "WORKFLOWS_EXPORTERS": "langfuse",
        "LANGFUSE_PUBLIC_KEY": "pk-lf-example",
        "LANGFUSE_SECRET_KEY": "sk-lf-example",
        "LANGFUSE_BASE_URL": otlp_receiver.endpoint,  # a local receiver stands in for Langfuse
    }

    output = run_example("agent", env=env).stdout

    [(trace_id, count)] = re.findall(r"^trace ([0-9a-f]{32})  \((\d+) spans", output, re.MULTILINE)
    spans = otlp_receiver.wait_for_spans(int(count))  # sent at exit: all there by now, or soon
    assert {span["trace_id"] for span in spans} == {trace_id}
    assert len(spans) == int(count)
    assert {request.path for request in otlp_receiver.requests} == {"/api/public/otel/v1/traces"}
    by_id = {span["span_id"]: span for span in spans}
    llm_calls = [span for span in spans if span["attributes"].get("openinference.span.kind") == "LLM"]
    assert [by_id[call["parent_span_id"]]["name"] for call in llm_calls] == ["WeatherAgent.call_llm"] * 2
