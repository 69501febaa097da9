"""A workflow for the fault tests: three steps, each logging ``step:tag:attempt`` as it runs."""

from __future__ import annotations

import asyncio
import os

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows_server import WorkflowServer


def log(line: str) -> None:
    with open(os.environ["WORKFLOWS_TEST_LOG"], "a") as out:
        out.write(line + "\n")


class One(Event):
    tag: str


class Two(Event):
    tag: str


class Chain(Workflow):
    @step
    async def a(self, ctx: Context, ev: StartEvent) -> One:
        log(f"a:{ev.tag}:{ctx.retry_info().retry_number}")
        await asyncio.sleep(0.02)
        return One(tag=ev.tag)

    @step
    async def b(self, ctx: Context, ev: One) -> Two:
        log(f"b:{ev.tag}:{ctx.retry_info().retry_number}")
        await ctx.store.set("padding", "x" * 2000)  # journal records that take room on the disk
        await asyncio.sleep(0.02)
        return Two(tag=ev.tag)

    @step
    async def c(self, ctx: Context, ev: Two) -> StopEvent:
        log(f"c:{ev.tag}:{ctx.retry_info().retry_number}")
        return StopEvent(result=f"{ev.tag}:done")


server = WorkflowServer()
server.add_workflow("chain", Chain(timeout=None))
