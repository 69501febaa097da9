"""Agents and tools in a real Phoenix: the kinds it shows and filters by, the tool fields it
derives from the GenAI attributes, and a plain workflow that stays a CHAIN (Phoenix maps
``invoke_agent`` and ``execute_tool`` but not ``invoke_workflow``)."""

from __future__ import annotations

from support.agent_workflows import Pipeline, ResearchAgent
from support.phoenix import PhoenixProject, Span, get_spans

AGENT_SPANS = 9  # run, plan, call_tool, lookup, writer and 4 emits
PIPELINE_SPANS = 6  # run, emit StartEvent, first, emit ToolResult, second, emit StopEvent


def kinds(spans: list[Span]) -> dict[str, str]:
    return {s["name"]: s["span_kind"] for s in spans}


async def test_agents_and_tools_show_their_kinds(phoenix_project: PhoenixProject) -> None:
    await ResearchAgent().run(topic="otel")
    await Pipeline().run(text="x")

    spans = phoenix_project.spans(AGENT_SPANS + PIPELINE_SPANS)

    shown = kinds(spans)
    assert shown["ResearchAgent.run"] == "AGENT"
    assert shown["ResearchAgent.writer"] == "AGENT"
    assert shown["ResearchAgent.call_tool"] == "TOOL"
    assert shown["lookup"] == "TOOL"
    assert shown["ResearchAgent.plan"] == "CHAIN"
    assert shown["Pipeline.run"] == "CHAIN"
    assert shown["Pipeline.first"] == "CHAIN"

    base, project = phoenix_project.server.base_url, phoenix_project.name
    assert {s["name"] for s in get_spans(base, project, span_kind="TOOL")} == {"ResearchAgent.call_tool", "lookup"}
    assert {s["name"] for s in get_spans(base, project, span_kind="AGENT")} == {
        "ResearchAgent.run",
        "ResearchAgent.writer",
    }


async def test_tool_spans_read_as_tool_calls(phoenix_project: PhoenixProject) -> None:
    await ResearchAgent().run(topic="otel")

    spans = {s["name"]: s for s in phoenix_project.spans(AGENT_SPANS)}

    step = spans["ResearchAgent.call_tool"]["attributes"]
    assert step["gen_ai.operation.name"] == "execute_tool"
    # Phoenix fills OpenInference's tool fields from the GenAI attributes
    assert (step["tool.name"], step["tool.id"]) == ("search", "call_7")
    function = spans["lookup"]["attributes"]
    assert (function["tool.name"], function["tool.id"]) == ("lookup", "call_7")
    # the run's conversation is the session Phoenix files it under
    run = spans["ResearchAgent.run"]["attributes"]
    assert run["gen_ai.conversation.id"] == run["session.id"]
    [session] = phoenix_project.sessions(1)
    assert session["session_id"] == run["session.id"]
