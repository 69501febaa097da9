"""The example agent server (examples/agent_server.py) plus a workflow that fails, for the debugger's tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "examples"))

from agent_server import server  # noqa: E402

from workflows import Workflow, step  # noqa: E402
from workflows.events import StartEvent, StopEvent  # noqa: E402


class Fails(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise ValueError(f"cannot plan a trip to {ev.get('question')!r}")


server.add_workflow("fails", Fails())
