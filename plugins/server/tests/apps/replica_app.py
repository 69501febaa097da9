"""Workflows the replica tests serve from several server processes on one PostgreSQL database.

Every step with a side effect appends ``what:tag:...:pid`` to the file named by
``WORKFLOWS_TEST_LOG``, so a test counts, across processes, how many times each step of
each run ran and on which replica. ``gated`` blocks in its ``work`` step until the test
creates the file ``WORKFLOWS_TEST_GATES/<tag>`` (or ``WORKFLOWS_TEST_GATES/all``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from workflows import Context, Workflow, step
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows_server import WorkflowServer

PID = os.getpid()


def log(line: str) -> None:
    with open(os.environ["WORKFLOWS_TEST_LOG"], "a") as out:
        out.write(f"{line}:{PID}\n")


class Halfway(Event):
    tag: str


class Progress(Event):
    tag: str
    index: int


async def gate(tag: str) -> None:
    folder = Path(os.environ["WORKFLOWS_TEST_GATES"])
    while not ((folder / tag).exists() or (folder / "all").exists()):
        await asyncio.sleep(0.02)


class Gated(Workflow):
    """first (quick), then work: streams progress, blocks until its gate opens, finishes."""

    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Halfway:
        log(f"first:{ev.tag}")
        await ctx.store.set("tag", ev.tag)
        ctx.write_event_to_stream(Progress(tag=ev.tag, index=0))
        return Halfway(tag=ev.tag)

    @step
    async def work(self, ctx: Context, ev: Halfway) -> StopEvent:
        attempt = ctx.retry_info().retry_number
        log(f"work-begin:{ev.tag}:{attempt}")
        await gate(ev.tag)
        log(f"work-done:{ev.tag}")
        ctx.write_event_to_stream(Progress(tag=ev.tag, index=1))
        return StopEvent(result=f"{await ctx.store.get('tag')}:done")


class Ask(Workflow):
    """Asks a human (InputRequiredEvent), waits for the HumanResponseEvent, answers with it."""

    @step
    async def prepare(self, ctx: Context, ev: StartEvent) -> Halfway:
        log(f"prepare:{ev.tag}")
        return Halfway(tag=ev.tag)

    @step
    async def ask(self, ctx: Context, ev: Halfway) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=f"ok {ev.tag}?"), timeout=None
        )
        log(f"answered:{ev.tag}:{answer.response}")
        return StopEvent(result=f"{ev.tag}:{answer.response}")


class Io(Workflow):
    """Three steps that each wait on I/O (a sleep of ``ms`` milliseconds): what the soak test and benchmark run."""

    @step
    async def fetch(self, ev: StartEvent) -> Halfway:
        await asyncio.sleep(float(ev.get("ms", 20)) / 1000)
        return Halfway(tag=str(ev.get("tag", "")))

    @step
    async def think(self, ctx: Context, ev: Halfway) -> Progress:
        await asyncio.sleep(0.02)
        await ctx.store.set("tag", ev.tag)
        return Progress(tag=ev.tag, index=1)

    @step
    async def save(self, ctx: Context, ev: Progress) -> StopEvent:
        await asyncio.sleep(0.02)
        log(f"io-done:{ev.tag}")
        return StopEvent(result=f"{await ctx.store.get('tag')}:ok")


server = WorkflowServer()
server.add_workflow("gated", Gated(timeout=None))
server.add_workflow("ask", Ask(timeout=None))
server.add_workflow("io", Io(timeout=None))
