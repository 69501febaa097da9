"""The two-step workflow, served by this project's server on SQLite (benchmarks/server.py)."""

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows_server import WorkflowServer


class Middle(Event):
    n: int


class TwoSteps(Workflow):
    @step
    async def one(self, ev: StartEvent) -> Middle:
        return Middle(n=int(ev.get("n", 0)))

    @step
    async def two(self, ev: Middle) -> StopEvent:
        return StopEvent(result=ev.n * 2)


server = WorkflowServer()
server.add_workflow("two", TwoSteps(timeout=None))
