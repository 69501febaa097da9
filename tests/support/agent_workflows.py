"""An agent workflow with tool steps, a tool function and an agent step, and a plain
workflow: what the GenAI-convention tests of the core, Langfuse and Phoenix trace.

``ResearchAgent`` (``is_agent = True``): ``plan`` (a plain step) asks for a tool call,
``call_tool`` (``@step(kind="TOOL")``) runs it through ``lookup`` (a
``@dispatcher.span(kind="TOOL")`` function) and ``writer`` (``@step(kind="AGENT")``, an
agent of a multi-agent workflow) writes the answer. ``Pipeline`` is a workflow of two
plain steps.
"""

from __future__ import annotations

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.instrumentation import get_dispatcher

dispatcher = get_dispatcher("tests.agent_workflows")


class ToolCall(Event):
    tool_name: str
    tool_call_id: str
    query: str


class ToolResult(Event):
    tool_call_id: str
    text: str


@dispatcher.span(kind="TOOL")
async def lookup(query: str, tool_call_id: str) -> dict[str, str]:
    """The tool itself, a span of its own inside the tool step."""
    return {"found": f"notes on {query}"}


class ResearchAgent(Workflow):
    is_agent = True

    @step
    async def plan(self, ev: StartEvent) -> ToolCall:
        return ToolCall(tool_name="search", tool_call_id="call_7", query=ev.topic)

    @step(kind="TOOL")
    async def call_tool(self, ev: ToolCall) -> ToolResult:
        found = await lookup(ev.query, tool_call_id=ev.tool_call_id)
        return ToolResult(tool_call_id=ev.tool_call_id, text=found["found"])

    @step(kind="AGENT")
    async def writer(self, ev: ToolResult) -> StopEvent:
        return StopEvent(result=f"report: {ev.text}")


class Pipeline(Workflow):
    @step
    async def first(self, ev: StartEvent) -> ToolResult:
        return ToolResult(tool_call_id="none", text=ev.text)

    @step
    async def second(self, ev: ToolResult) -> StopEvent:
        return StopEvent(result=ev.text.upper())
