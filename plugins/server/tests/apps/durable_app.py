"""Workflows the server tests serve in a real server process.

Each step with a side effect appends a line to the file named by ``WORKFLOWS_TEST_LOG``,
so a test counts how many times each step of each run really ran, across processes.
``slow`` hangs on its first attempt (the test kills the server there) and finishes
on the next one.
"""

from __future__ import annotations

import asyncio
import os

from workflows import Context, Workflow, step
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows_server import WorkflowServer


def log(line: str) -> None:
    with open(os.environ["WORKFLOWS_TEST_LOG"], "a") as out:
        out.write(line + "\n")
        out.flush()


class Halfway(Event):
    tag: str


class Progress(Event):
    index: int


class Answered(Event):
    text: str


class TwoSteps(Workflow):
    """first (quick) then slow (hangs on its first attempt): kill -9 lands mid-step."""

    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Halfway:
        log(f"first:{ev.tag}")
        await ctx.store.set("tag", ev.tag)
        return Halfway(tag=ev.tag)

    @step
    async def slow(self, ctx: Context, ev: Halfway) -> StopEvent:
        attempt = ctx.retry_info().retry_number
        log(f"slow-begin:{ev.tag}:{attempt}")
        if attempt == 0 and os.environ.get("WORKFLOWS_TEST_HANG") == "1":
            await asyncio.Event().wait()
        log(f"slow-done:{ev.tag}")
        return StopEvent(result=f"{await ctx.store.get('tag')}:done:attempt{attempt}")


class Quick(Workflow):
    """Two steps, no side effects: what the benchmark runs."""

    @step
    async def one(self, ev: StartEvent) -> Halfway:
        return Halfway(tag=str(ev.get("n", 0)))

    @step
    async def two(self, ev: Halfway) -> StopEvent:
        return StopEvent(result=ev.tag)


class AskHuman(Workflow):
    """Asks a question, waits for the answer (HumanResponseEvent), answers with it."""

    @step
    async def prepare(self, ctx: Context, ev: StartEvent) -> Halfway:
        log(f"prepare:{ev.tag}")
        await ctx.store.set("asked", ev.tag)
        return Halfway(tag=ev.tag)

    @step
    async def ask(self, ctx: Context, ev: Halfway) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=f"ok {ev.tag}?"), timeout=None
        )
        log(f"answered:{ev.tag}:{answer.response}")
        return StopEvent(result=f"{await ctx.store.get('asked')}:{answer.response}")


class AskByReturn(Workflow):
    """Asks by returning an InputRequiredEvent; a step takes the HumanResponseEvent that answers it."""

    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> InputRequiredEvent:
        log(f"ask:{ev.tag}")
        await ctx.store.set("tag", ev.tag)
        return InputRequiredEvent(prefix=f"ok {ev.tag}?")

    @step
    async def answer(self, ctx: Context, ev: HumanResponseEvent) -> StopEvent:
        tag = await ctx.store.get("tag")
        log(f"answer:{tag}:{ev.response}")
        return StopEvent(result=f"{tag}:{ev.response}")


class Streams(Workflow):
    @step
    async def talk(self, ctx: Context, ev: StartEvent) -> StopEvent:
        for index in range(int(ev.get("count", 3))):
            ctx.write_event_to_stream(Progress(index=index))
        return StopEvent(result="talked")


class Fails(Workflow):
    @step
    async def boom(self, ev: StartEvent) -> StopEvent:
        raise ValueError("the step failed on purpose")


server = WorkflowServer()
server.add_workflow("two_steps", TwoSteps(timeout=None))
server.add_workflow("quick", Quick(timeout=None))
server.add_workflow("ask", AskHuman(timeout=None))
server.add_workflow("ask_by_return", AskByReturn(timeout=None))
server.add_workflow("streams", Streams())
server.add_workflow("fails", Fails())
