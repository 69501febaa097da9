"""llama-index-core agents: workflow state edited by tools, and one Context reused across runs."""

# No "from __future__ import annotations": FunctionTool finds the ctx parameter by its real annotation.

from conftest import ToolCall, scripted_llm
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.workflow import Context


async def record(ctx: Context, item: str) -> str:
    """Record an item in the shared state."""
    async with ctx.store.edit_state() as state:
        state["state"]["items"] = [*state["state"].get("items", []), item]
    return f"recorded {item}"


async def test_agent_workflow_state_is_edited_by_tools_and_read_after_the_run():
    agent = FunctionAgent(
        name="clerk", description="Records items", tools=[record],
        llm=scripted_llm(ToolCall(name="record", kwargs={"item": "apple"}), ToolCall(name="record", kwargs={"item": "pear"}), "Done."),
        system_prompt="Items so far: {items}",
    )
    flow = AgentWorkflow(agents=[agent], root_agent="clerk", initial_state={"items": ["fig"]})
    handler = flow.run(user_msg="Record apple and pear")
    assert str(await handler) == "Done."
    state = await handler.ctx.store.get("state")
    assert state["items"] == ["fig", "apple", "pear"]


async def test_one_context_reused_across_runs_keeps_the_conversation():
    llm = scripted_llm("Noted: Ada.", "You are Ada.")
    agent = FunctionAgent(tools=[record], llm=llm)
    ctx = Context(agent)
    assert str(await agent.run(user_msg="I am Ada.", ctx=ctx)) == "Noted: Ada."
    assert str(await agent.run(user_msg="Who am I?", ctx=ctx)) == "You are Ada."
    sent = [(m.role.value, m.content) for m in llm._seen[-1]]
    assert ("user", "I am Ada.") in sent and ("assistant", "Noted: Ada.") in sent and sent[-1] == ("user", "Who am I?")
