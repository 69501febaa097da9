"""A user's program with no tracing code: exporters come from WORKFLOWS_EXPORTERS alone.

Runs one two-step workflow and prints its result; the exporters flush when the
interpreter exits, as in any short script.
"""

import asyncio

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Greeted(Event):
    text: str


class HelloWorkflow(Workflow):
    @step
    async def greet(self, ev: StartEvent) -> Greeted:
        return Greeted(text=f"hello {ev.name}")

    @step
    async def finish(self, ev: Greeted) -> StopEvent:
        return StopEvent(result=ev.text)


async def main() -> None:
    print(await HelloWorkflow(timeout=30).run(name="env"))


asyncio.run(main())
