"""llama-index-core's agents on this engine: tools, streaming, handoff, human in the loop, cancel, timeout."""

# No "from __future__ import annotations": FunctionTool finds the ctx parameter by its real annotation.

import asyncio
import json

import pytest
from conftest import ToolCall, scripted_llm
from llama_index.core.agent.workflow import (
    AgentOutput,
    AgentStream,
    AgentWorkflow,
    CodeActAgent,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.agent.workflow.workflow_events import ToolCall as ToolCallEvent
from llama_index.core.workflow import Context, HumanResponseEvent, InputRequiredEvent

import workflows
from workflows.context.serializers import PickleSerializer
from workflows.errors import WorkflowCancelledByUser, WorkflowTimeoutError


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def confirm(ctx: Context, action: str) -> str:
    """Ask a human to confirm an action."""
    answer = await ctx.wait_for_event(
        HumanResponseEvent, waiter_id=f"confirm-{action}", waiter_event=InputRequiredEvent(prefix=f"{action}?")
    )
    return f"{action}: {answer.response}"


async def hang(reason: str) -> str:
    """A tool that never returns."""
    await asyncio.Event().wait()
    return reason


def test_the_clients_run_on_this_engine():
    assert workflows.__file__.replace("\\", "/").split("/")[-3] == "src"  # this checkout, not the reference
    assert Context.__module__ == "workflows.context.context"


async def test_function_agent_calls_a_tool_and_streams():
    llm = scripted_llm(ToolCall(name="add", kwargs={"a": 2, "b": 3}), "The sum is 5.")
    agent = FunctionAgent(tools=[add], llm=llm, system_prompt="You add numbers.")
    handler = agent.run(user_msg="What is 2 + 3?")
    events = [ev async for ev in handler.stream_events()]
    response = await handler
    assert str(response) == "The sum is 5."
    results = [ev for ev in events if isinstance(ev, ToolCallResult)]
    assert [(r.tool_name, r.tool_output.content) for r in results] == [("add", "5")]
    assert any(isinstance(ev, AgentStream) and "sum" in ev.delta for ev in events)
    assert any(isinstance(ev, AgentOutput) for ev in events)
    assert llm._script == []


async def test_react_agent_reasons_acts_and_answers():
    llm = scripted_llm(
        'Thought: I need to add.\nAction: add\nAction Input: {"a": 4, "b": 5}',
        "Thought: I can answer without using any more tools.\nAnswer: 9",
    )
    agent = ReActAgent(tools=[add], llm=llm)
    handler = agent.run(user_msg="What is 4 + 5?")
    events = [ev async for ev in handler.stream_events()]
    assert str(await handler) == "9"
    assert [r.tool_output.content for r in events if isinstance(r, ToolCallResult)] == ["9"]


async def test_code_act_agent_executes_code():
    executed: list[str] = []

    async def execute(code: str) -> dict:
        executed.append(code)
        return {"output": "6"}

    llm = scripted_llm("Let me compute.\n<execute>\nprint(1 + 5)\n</execute>", "The result is 6.")
    agent = CodeActAgent(code_execute_fn=execute, llm=llm)
    handler = agent.run(user_msg="Compute 1 + 5.")
    assert str(await handler) == "The result is 6."
    assert [c.strip() for c in executed] == ["print(1 + 5)"]


async def test_agent_workflow_hands_off_between_agents():
    planner = FunctionAgent(
        name="planner",
        description="Plans",
        llm=scripted_llm(ToolCall(name="handoff", kwargs={"to_agent": "calculator", "reason": "math"})),
        tools=[],
        can_handoff_to=["calculator"],
    )
    calculator = FunctionAgent(
        name="calculator",
        description="Adds",
        llm=scripted_llm(ToolCall(name="add", kwargs={"a": 1, "b": 1}), "It is 2."),
        tools=[add],
    )
    flow = AgentWorkflow(agents=[planner, calculator], root_agent="planner")
    handler = flow.run(user_msg="1 + 1?")
    events = [ev async for ev in handler.stream_events()]
    assert str(await handler) == "It is 2."
    speakers = [ev.current_agent_name for ev in events if isinstance(ev, AgentOutput)]
    assert speakers[0] == "planner" and speakers[-1] == "calculator"
    assert [r.tool_name for r in events if isinstance(r, ToolCallResult)] == ["handoff", "add"]


async def test_human_in_the_loop_live():
    llm = scripted_llm(ToolCall(name="confirm", kwargs={"action": "deploy"}), "Deployed.")
    agent = FunctionAgent(tools=[confirm], llm=llm)
    handler = agent.run(user_msg="Deploy it")
    prompts = []
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            prompts.append(ev.prefix)
            handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert str(await handler) == "Deployed."
    assert prompts == ["deploy?"]
    tool_messages = [m for m in llm._seen[-1] if m.role == "tool"]
    assert tool_messages and "deploy: yes" in str(tool_messages[-1].content)


async def test_human_in_the_loop_after_serialize_and_resume():
    llm = scripted_llm(ToolCall(name="confirm", kwargs={"action": "pay"}), "Paid.")
    agent = FunctionAgent(tools=[confirm], llm=llm)
    handler = agent.run(user_msg="Pay the bill")
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            break
    # PickleSerializer (trusted data) still works; the default JSON serializer is in scenario_resume.
    saved = json.loads(json.dumps(handler.ctx.to_dict(serializer=PickleSerializer())))
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler

    # A fresh agent object, as after a restart, resumes from the saved context.
    resumed_agent = FunctionAgent(tools=[confirm], llm=llm)
    ctx = Context.from_dict(resumed_agent, saved, serializer=PickleSerializer())
    resumed = resumed_agent.run(ctx=ctx)
    resumed.ctx.send_event(HumanResponseEvent(response="approved"))
    assert str(await asyncio.wait_for(resumed, timeout=30)) == "Paid."
    assert "pay: approved" in str([m.content for m in llm._seen[-1] if m.role == "tool"])


async def test_cancel_while_a_tool_runs():
    agent = FunctionAgent(tools=[hang], llm=scripted_llm(ToolCall(name="hang", kwargs={"reason": "x"})))
    handler = agent.run(user_msg="hang")
    async for ev in handler.stream_events():
        if isinstance(ev, ToolCallEvent):
            break
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    assert handler.is_done()


async def test_timeout_while_a_tool_runs():
    agent = FunctionAgent(tools=[hang], llm=scripted_llm(ToolCall(name="hang", kwargs={"reason": "x"})), timeout=0.5)
    with pytest.raises(WorkflowTimeoutError, match="timed out after 0.5 seconds"):
        await agent.run(user_msg="hang")
