"""More llama-index-core agent flows: token streaming, a failing tool, concurrent runs of one
agent, and AgentWorkflow's human wait, context reuse and JSON round trip."""

# No "from __future__ import annotations": FunctionTool finds the ctx parameter by its real annotation.

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from conftest import ToolCall, scripted_llm
from llama_index.core.agent.workflow import AgentOutput, AgentStream, AgentWorkflow, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.workflow import Context, HumanResponseEvent, InputRequiredEvent


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


async def confirm(ctx: Context, action: str) -> str:
    """Ask a human to confirm an action."""
    answer = await ctx.wait_for_event(
        HumanResponseEvent, waiter_id=f"confirm-{action}", waiter_event=InputRequiredEvent(prefix=f"{action}?")
    )
    return f"{action}: {answer.response}"


def _one_agent_workflow(llm: MockFunctionCallingLLM, **kwargs: Any) -> AgentWorkflow:
    agent = FunctionAgent(name="clerk", description="Does errands", tools=[confirm, add], llm=llm)
    return AgentWorkflow(agents=[agent], root_agent="clerk", **kwargs)


def _conversation(llm: MockFunctionCallingLLM) -> list[tuple[str, str]]:
    """What the LLM was sent last, as (role, text), each user text without the state block before it."""
    sent = [(m.role.value, str(m.content)) for m in llm._seen[-1] if m.role != MessageRole.SYSTEM]  # type: ignore[attr-defined]
    return [(role, text.rsplit("Current message:\n", 1)[-1].strip()) for role, text in sent]


async def test_function_agent_streams_the_answer_chunk_by_chunk():
    chunks = ["The ", "The answer ", "The answer is 42."]

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> AsyncIterator[ChatMessage]:
        async def gen() -> AsyncIterator[ChatMessage]:
            for text in chunks:  # the mock sends each message's whole text as one delta
                yield ChatMessage(role=MessageRole.ASSISTANT, content=text)

        return gen()

    agent = FunctionAgent(tools=[add], llm=MockFunctionCallingLLM(response_generator=respond, is_chat_model=True))
    handler = agent.run(user_msg="What is the answer?")
    events = [ev async for ev in handler.stream_events()]
    assert str(await handler) == "The answer is 42."
    assert [ev.delta for ev in events if isinstance(ev, AgentStream)] == chunks
    # Each delta reaches the stream before the agent's output of that turn.
    kinds = [type(ev).__name__ for ev in events if isinstance(ev, (AgentStream, AgentOutput))]
    assert kinds == ["AgentStream"] * 3 + ["AgentOutput"]


async def test_a_failing_tool_is_reported_to_the_llm_and_the_agent_recovers():
    llm = scripted_llm(ToolCall(name="divide", kwargs={"a": 1, "b": 0}), "I cannot divide by zero.")
    agent = FunctionAgent(tools=[divide], llm=llm)
    handler = agent.run(user_msg="1 / 0?")
    events = [ev async for ev in handler.stream_events()]
    assert str(await handler) == "I cannot divide by zero."
    [result] = [ev for ev in events if isinstance(ev, ToolCallResult)]
    assert result.tool_output.is_error and "division by zero" in result.tool_output.content
    tool_messages = [m for m in llm._seen[-1] if m.role == "tool"]
    assert "division by zero" in str(tool_messages[-1].content)


async def test_concurrent_runs_of_one_agent_keep_their_conversations_apart():
    def echo(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        users = [m.content for m in messages if m.role == MessageRole.USER]
        return ChatMessage(role=MessageRole.ASSISTANT, content=f"heard {len(users)}: {users[-1]}")

    agent = FunctionAgent(tools=[add], llm=MockFunctionCallingLLM(response_generator=echo, is_chat_model=True))
    results = await asyncio.gather(*(agent.run(user_msg=f"message {i}") for i in range(5)))
    assert [str(r) for r in results] == [f"heard 1: message {i}" for i in range(5)]


async def test_human_in_the_loop_live_in_an_agent_workflow():
    llm = scripted_llm(ToolCall(name="confirm", kwargs={"action": "ship"}), "Shipped.")
    flow = _one_agent_workflow(llm)
    handler = flow.run(user_msg="Ship it")
    prompts = []
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            prompts.append(ev.prefix)
            handler.ctx.send_event(HumanResponseEvent(response="go"))
    assert str(await handler) == "Shipped."
    assert prompts == ["ship?"]
    assert "ship: go" in str([m.content for m in llm._seen[-1] if m.role == "tool"])


async def test_one_context_reused_across_runs_of_an_agent_workflow_keeps_conversation_and_state():
    llm = scripted_llm("Noted: Ada.", "You are Ada.")
    flow = _one_agent_workflow(llm, initial_state={"visits": 1})
    ctx = Context(flow)
    assert str(await flow.run(user_msg="I am Ada.", ctx=ctx)) == "Noted: Ada."
    assert str(await flow.run(user_msg="Who am I?", ctx=ctx)) == "You are Ada."
    # AgentWorkflow puts the state in front of each user message.
    assert _conversation(llm) == [("user", "I am Ada."), ("assistant", "Noted: Ada."), ("user", "Who am I?")]
    assert (await ctx.store.get("state"))["visits"] == 1


async def test_an_agent_workflow_context_json_round_trip_keeps_conversation_and_state():
    llm = scripted_llm("Hello Ada.", "Your name is Ada.")
    flow = _one_agent_workflow(llm, initial_state={"plan": "gold"})
    first = flow.run(user_msg="My name is Ada.")
    assert str(await first) == "Hello Ada."
    saved = json.loads(json.dumps(first.ctx.to_dict()))

    fresh = _one_agent_workflow(llm, initial_state={"plan": "gold"})
    restored = Context.from_dict(fresh, saved)
    second = fresh.run(user_msg="What is my name?", ctx=restored)
    assert str(await second) == "Your name is Ada."
    assert _conversation(llm) == [("user", "My name is Ada."), ("assistant", "Hello Ada."), ("user", "What is my name?")]
    assert (await second.ctx.store.get("state"))["plan"] == "gold"
