"""The example agent server (examples/agent_server.py) plus a workflow that fails and one that asks a person
with an ``InputRequiredEvent`` (the other pattern of waiting), for the debugger's tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "examples"))

from agent_server import server  # noqa: E402

from workflows import Workflow, step  # noqa: E402
from workflows.events import HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent  # noqa: E402


class Fails(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise ValueError(f"cannot plan a trip to {ev.get('question')!r}")


class Approval(Workflow):
    """Asks a person by returning an InputRequiredEvent; the answer comes back as a HumanResponseEvent."""

    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix=f"approve {ev.get('question')}?")

    @step
    async def decide(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=f"answered {ev.response}")


server.add_workflow("fails", Fails())
server.add_workflow("approval", Approval())
