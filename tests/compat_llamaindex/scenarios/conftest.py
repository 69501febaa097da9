"""A scripted function-calling LLM for LlamaIndex's agents (runs in the compat venv only)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import MockFunctionCallingLLM


@dataclass(kw_only=True)
class ToolCall:
    """One scripted turn that calls ``name`` with ``kwargs``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def scripted_llm(*turns: str | ToolCall) -> MockFunctionCallingLLM:
    """An LLM whose successive chat turns are ``turns``: text replies or tool calls.

    Running out of turns fails the test with the conversation so far, so a scenario
    always knows how many LLM calls the agent made.
    """
    script = list(turns)
    seen: list[Sequence[ChatMessage]] = []

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        seen.append(list(messages))
        if not script:
            pytest.fail(f"the agent made more LLM calls than scripted; last messages: {messages}")
        turn = script.pop(0)
        if isinstance(turn, ToolCall):
            block = ToolCallBlock(tool_call_id=f"call-{uuid.uuid4().hex[:8]}", tool_name=turn.name, tool_kwargs=turn.kwargs)
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[block])
        return ChatMessage(role=MessageRole.ASSISTANT, content=turn)

    llm = MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)
    llm._script = script  # type: ignore[attr-defined]  # what is left, for assertions
    llm._seen = seen  # type: ignore[attr-defined]
    return llm
