"""The smallest workflow with typed state: its result, and the trace of each run.

What it shows:
- two steps exchanging a custom event, and typed state (``Context[RunState]``) edited
  with ``ctx.store.edit_state()``;
- a second run with the same Context keeps the state (and the session);
- ``ConsoleTraceHandler``, which prints each finished run as a tree: steps with their
  durations, the events between them, the state changes. It needs no tracing backend
  and no OpenTelemetry SDK.

Run:
    python examples/quickstart.py
"""

import asyncio
import sys

from pydantic import BaseModel, Field

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.instrumentation import ConsoleTraceHandler, get_dispatcher


class MyEvent(Event):
    msg: list[str]


class RunState(BaseModel):
    num_runs: int = Field(default=0)


class MyWorkflow(Workflow):
    @step
    async def start(self, ctx: Context[RunState], ev: StartEvent) -> MyEvent:
        async with ctx.store.edit_state() as state:
            state.num_runs += 1
            return MyEvent(msg=[ev.input_msg] * state.num_runs)

    @step
    async def process(self, ctx: Context[RunState], ev: MyEvent) -> StopEvent:
        data_length = len("".join(ev.msg))
        return StopEvent(result=f"Processed {len(ev.msg)} times, data length: {data_length}")


async def main() -> None:
    get_dispatcher().add_handler(ConsoleTraceHandler(file=sys.stdout))
    workflow = MyWorkflow()
    ctx = Context(workflow)  # optional: reusing it keeps the state between runs
    for _ in range(2):
        result = await workflow.run(input_msg="Hello, world!", ctx=ctx)
        print("Result:", result)
        print()


if __name__ == "__main__":
    asyncio.run(main())
