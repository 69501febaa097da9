"""A workflow whose steps wait on I/O, served by replicas on PostgreSQL (benchmarks/server_replicas.py).

``io``: three steps, each waiting ``ms`` milliseconds (a stand-in for a model or an API
call). ``hold``: one step that waits until the file named by its start event exists
(what the takeover measurement kills a replica in the middle of).
"""

import asyncio
from pathlib import Path

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows_server import WorkflowServer


class Fetched(Event):
    n: int


class Thought(Event):
    n: int


class Io(Workflow):
    @step
    async def fetch(self, ev: StartEvent) -> Fetched:
        await asyncio.sleep(float(ev.get("ms", 50)) / 1000)
        return Fetched(n=int(ev.get("n", 0)))

    @step
    async def think(self, ctx: Context, ev: Fetched) -> Thought:
        await asyncio.sleep(0.05)
        await ctx.store.set("n", ev.n)
        return Thought(n=ev.n)

    @step
    async def answer(self, ev: Thought) -> StopEvent:
        await asyncio.sleep(0.05)
        return StopEvent(result=ev.n * 2)


class Hold(Workflow):
    @step
    async def wait(self, ev: StartEvent) -> StopEvent:
        gate = Path(str(ev.get("gate")))
        while not gate.exists():
            await asyncio.sleep(0.05)
        return StopEvent(result="released")


server = WorkflowServer()
server.add_workflow("io", Io(timeout=None))
server.add_workflow("hold", Hold(timeout=None))
