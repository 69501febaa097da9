"""Saved agents: paused for a human, saved as JSON, resumed in a fresh process; and a context
that keeps the conversation across a JSON round trip. The default (JSON) serializer throughout."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from agent_resume import build, confirm
from conftest import ToolCall, scripted_llm
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.workflow import Context, InputRequiredEvent

from workflows.context.state_store import UnserializableKeyWarning
from workflows.errors import WorkflowCancelledByUser

HERE = Path(__file__).parent


async def _pause_and_save(kind: str, tmp_path: Path) -> Path:
    llm = scripted_llm(ToolCall(name="confirm", kwargs={"action": "pay"}), "unused")
    flow = build(kind, llm)
    handler = flow.run(user_msg="Pay the bill")
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            break
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnserializableKeyWarning)  # the memory is saved too
        saved = json.dumps(handler.ctx.to_dict())
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    path = tmp_path / "saved.json"
    path.write_text(saved)
    return path


async def _resume_in_a_fresh_process(kind: str, tmp_path: Path) -> None:
    path = await _pause_and_save(kind, tmp_path)
    done = subprocess.run(
        [sys.executable, str(HERE / "agent_resume.py"), kind, str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["result"] == "Paid."
    # The restored agent remembers the conversation: the user's request and the tool's answer.
    assert ["user", "Pay the bill"] in out["messages"]
    assert ["tool", "pay: approved"] in out["messages"]


# One scenario function each (the outer test maps functions, not parameters).
async def test_a_function_agent_paused_for_a_human_resumes_from_json_in_a_fresh_process(tmp_path: Path):
    await _resume_in_a_fresh_process("function", tmp_path)


async def test_an_agent_workflow_paused_for_a_human_resumes_from_json_in_a_fresh_process(tmp_path: Path):
    await _resume_in_a_fresh_process("workflow", tmp_path)


async def test_a_context_json_round_trip_keeps_the_conversation():
    llm = scripted_llm("Hello Ada.", "Your name is Ada.")
    agent = FunctionAgent(tools=[confirm], llm=llm)
    first = agent.run(user_msg="My name is Ada.")
    assert str(await first) == "Hello Ada."
    saved = json.loads(json.dumps(first.ctx.to_dict()))

    fresh = FunctionAgent(tools=[confirm], llm=llm)
    second = fresh.run(user_msg="What is my name?", ctx=Context.from_dict(fresh, saved))
    assert str(await second) == "Your name is Ada."
    sent = [(m.role.value, m.content) for m in llm._seen[-1]]
    assert ("user", "My name is Ada.") in sent and ("assistant", "Hello Ada.") in sent
    assert sent[-1] == ("user", "What is my name?")
