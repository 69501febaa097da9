"""The same two-step workflow on llama-agents-server 0.8.0 with its SQLite store: ``python reference_app.py PORT DB``."""

import asyncio
import sys

from llama_agents.server import SqliteWorkflowStore, WorkflowServer
from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Middle(Event):
    n: int


class TwoSteps(Workflow):
    @step
    async def one(self, ev: StartEvent) -> Middle:
        return Middle(n=int(ev.get("n", 0)))

    @step
    async def two(self, ev: Middle) -> StopEvent:
        return StopEvent(result=ev.n * 2)


server = WorkflowServer(workflow_store=SqliteWorkflowStore(sys.argv[2]))
server.add_workflow("two", TwoSteps(timeout=None))
asyncio.run(server.serve(host="127.0.0.1", port=int(sys.argv[1]), uvicorn_config={"log_level": "warning"}))
