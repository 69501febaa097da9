"""Workflows that pause for a human, and a command line that resumes them in another process.

They live in an importable module (not in a test file) because a saved Context names
its event and state classes by import path: the process that resumes the run must be
able to import the same classes. ``tests/test_human_in_the_loop.py`` pauses a run,
writes ``ctx.to_dict()`` to a JSON file and runs::

    python -c "import sys; from support.pausable_workflows import main; main(sys.argv[1:])" \
        <ask|wait> <json|pickle> <payload.json> <answer>

with ``tests/`` on ``PYTHONPATH``; this prints the run's result as one JSON line. (Not
``python -m``: that would load this module a second time as ``__main__``, and a pickled
``Note`` would not be an instance of ``__main__.Note``.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from workflows import Context, Workflow, step
from workflows.context import JsonSerializer, PickleSerializer
from workflows.context.serializers import BaseSerializer
from workflows.events import HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent


class Note:
    """A state value JSON cannot carry (a plain object), so only PickleSerializer can save it."""

    def __init__(self, text: str) -> None:
        self.text = text


def _note_text(value: object) -> str | None:
    return value.text if isinstance(value, Note) else None


class AskWorkflow(Workflow):
    """Asks a question by returning an InputRequiredEvent; the answer arrives as a HumanResponseEvent."""

    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> InputRequiredEvent:
        await ctx.store.set("asked", await ctx.store.get("asked", default=0) + 1)
        await ctx.store.set("question", ev.question)
        return InputRequiredEvent(prefix=ev.question)

    @step
    async def answer(self, ctx: Context, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(
            result={
                "question": await ctx.store.get("question"),
                "response": ev.response,
                "asked": await ctx.store.get("asked"),
                "note": _note_text(await ctx.store.get("note", default=None)),
            }
        )


class WaitWorkflow(Workflow):
    """Waits inline with ``ctx.wait_for_event``; the step runs again from the top when the answer comes."""

    @step
    async def greet(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("entries", await ctx.store.get("entries", default=0) + 1)
        reply = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix="name?"),
            timeout=60,
        )
        return StopEvent(
            result={
                "response": reply.response,
                "entries": await ctx.store.get("entries"),
                "note": _note_text(await ctx.store.get("note", default=None)),
            }
        )


WORKFLOWS: dict[str, type[Workflow]] = {"ask": AskWorkflow, "wait": WaitWorkflow}
SERIALIZERS: dict[str, type[BaseSerializer]] = {"json": JsonSerializer, "pickle": PickleSerializer}


async def resume(kind: str, serializer_name: str, payload: dict[str, Any], answer: str) -> object:
    """Rebuild the paused run from its ``to_dict()`` payload, send the answer, and return the result."""
    workflow = WORKFLOWS[kind](timeout=5)
    ctx = Context.from_dict(workflow, payload, serializer=SERIALIZERS[serializer_name]())
    assert ctx.is_running, "the payload should hold a run that is still going"
    handler = workflow.run(ctx=ctx)
    handler.ctx.send_event(HumanResponseEvent(response=answer))
    return await handler


def main(argv: list[str]) -> None:
    kind, serializer_name, payload_path, answer = argv
    with open(payload_path, encoding="utf-8") as f:
        payload = json.load(f)
    result = asyncio.run(resume(kind, serializer_name, payload, answer))
    print(json.dumps(result))
