"""Resumes a saved agent in a fresh process (run by scenario_resume.py in a subprocess).

``python agent_resume.py function|workflow <saved.json>``: builds the agent again, loads the
saved context with the default (JSON) serializer, answers the pending human request and
prints ``{"result": ..., "messages": [[role, text], ...]}``: what the LLM was sent last.
"""

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import scripted_llm  # noqa: E402
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent  # noqa: E402
from llama_index.core.workflow import Context, HumanResponseEvent, InputRequiredEvent  # noqa: E402


async def confirm(ctx: Context, action: str) -> str:
    """Ask a human to confirm an action."""
    answer = await ctx.wait_for_event(
        HumanResponseEvent, waiter_id=f"confirm-{action}", waiter_event=InputRequiredEvent(prefix=f"{action}?")
    )
    return f"{action}: {answer.response}"


def build(kind: str, llm):
    agent = FunctionAgent(name="cashier", description="Pays bills", tools=[confirm], llm=llm)
    return agent if kind == "function" else AgentWorkflow(agents=[agent], root_agent="cashier")


async def main(kind: str, saved: Path) -> None:
    llm = scripted_llm("Paid.")
    flow = build(kind, llm)
    ctx = Context.from_dict(flow, json.loads(saved.read_text()))
    handler = flow.run(ctx=ctx)
    handler.ctx.send_event(HumanResponseEvent(response="approved"))
    result = await asyncio.wait_for(handler, timeout=30)
    messages = [[str(m.role.value), str(m.content)] for m in llm._seen[-1]]
    print(json.dumps({"result": str(result), "messages": messages}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
