"""Conformance: human-in-the-loop events, wait_for_event, and pause/resume (API.md §6, §7.6, §7.10, §8)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.pausable_workflows import AskWorkflow, Note, WaitWorkflow

from workflows import Context, Workflow, step
from workflows.context import PickleSerializer
from workflows.errors import WorkflowCancelledByUser
from workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    UnhandledEvent,
    WorkflowFailedEvent,
)

TESTS_DIR = Path(__file__).resolve().parent


class Approval(Event):
    user: str


# checklist 41
async def test_returned_input_required_event_is_streamed_and_a_human_response_completes_the_run() -> None:
    class Hitl(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="p")

        @step
        async def answer(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent(result=ev.response)

    handler = Hitl(timeout=5).run()
    streamed: list[Event] = []
    async for ev in handler.stream_events():
        streamed.append(ev)
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response="r"))
    assert await handler == "r"
    assert [type(ev) for ev in streamed] == [InputRequiredEvent, StopEvent]
    assert streamed[0].prefix == "p"


# checklist 59
async def test_wait_for_event_publishes_the_prompt_once_reruns_the_step_and_returns_the_event() -> None:
    entries: list[int] = []
    sent = HumanResponseEvent(response="ok")

    class Inline(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            entries.append(1)
            reply = await ctx.wait_for_event(HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="go?"))
            return StopEvent(result=reply)

    handler = Inline(timeout=5).run()
    prompts = []
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            prompts.append(ev)
            handler.ctx.send_event(sent)
    assert await handler is sent
    assert len(prompts) == 1 and prompts[0].prefix == "go?"
    assert len(entries) == 2  # the body ran again from the top when the event arrived


# checklist 60
async def test_wait_for_event_requirements_skip_non_matching_events() -> None:
    class Gate(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            approval = await ctx.wait_for_event(
                Approval, waiter_event=InputRequiredEvent(prefix="who?"), requirements={"user": "bob"}
            )
            return StopEvent(result=approval.user)

    handler = Gate(timeout=5).run()
    unhandled: list[str] = []
    async for ev in handler.stream_events(expose_internal=True):
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(Approval(user="alice"))
        elif isinstance(ev, UnhandledEvent):
            unhandled.append(ev.event_type)
            handler.ctx.send_event(Approval(user="bob"))
    assert await handler == "bob"
    assert unhandled == ["Approval"]


# checklist 61
async def test_wait_for_event_timeout_raises_timeout_error_inside_the_step() -> None:
    class Patient(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            try:
                await ctx.wait_for_event(HumanResponseEvent, timeout=0.2)
            except asyncio.TimeoutError as exc:
                return StopEvent(result=f"gave up: {exc}")
            return StopEvent(result="answered")

    assert await Patient(timeout=5).run() == "gave up: Timed out waiting for HumanResponseEvent"


# checklist 61
async def test_uncaught_wait_for_event_timeout_fails_the_run_with_timeout_error() -> None:
    class Impatient(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            await ctx.wait_for_event(HumanResponseEvent, timeout=0.2)
            return StopEvent(result="answered")

    handler = Impatient(timeout=5).run()
    with pytest.raises(TimeoutError):
        await handler
    events = [ev async for ev in handler.stream_events()]
    assert isinstance(events[-1], WorkflowFailedEvent) and events[-1].step_name == "s"


async def _pause_at_prompt(
    workflow: Workflow, ctx: Context | None = None, serializer: PickleSerializer | None = None, **run_kwargs: Any
) -> tuple[dict[str, Any], list[Event]]:
    """Run until the first InputRequiredEvent, snapshot the context, cancel; return the snapshot and the stream."""
    handler = workflow.run(ctx=ctx, **run_kwargs)
    streamed: list[Event] = []
    payload: dict[str, Any] = {}
    async for ev in handler.stream_events():
        streamed.append(ev)
        if isinstance(ev, InputRequiredEvent):
            payload = handler.ctx.to_dict(serializer=serializer)
            await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    return payload, streamed


# checklist 62
async def test_paused_run_resumes_from_its_snapshot_without_a_new_start_event() -> None:
    payload, streamed = await _pause_at_prompt(AskWorkflow(timeout=5), question="color?")
    assert payload["is_running"] is True
    assert isinstance(streamed[0], InputRequiredEvent)

    workflow = AskWorkflow(timeout=5)
    restored = Context.from_dict(workflow, json.loads(json.dumps(payload)))
    assert restored.is_running
    handler = workflow.run(ctx=restored, question="ignored on resume")
    handler.ctx.send_event(HumanResponseEvent(response="blue"))
    resumed_stream = [ev async for ev in handler.stream_events()]
    result = await handler
    assert result == {"question": "color?", "response": "blue", "asked": 1, "note": None}
    assert [type(ev) for ev in resumed_stream] == [StopEvent]  # the prompt is not published again


# checklist 62
async def test_step_waiting_for_an_event_resumes_in_process() -> None:
    payload, _ = await _pause_at_prompt(WaitWorkflow(timeout=5))
    assert payload["is_running"] is True

    workflow = WaitWorkflow(timeout=1)
    handler = workflow.run(ctx=Context.from_dict(workflow, json.loads(json.dumps(payload))))
    handler.ctx.send_event(HumanResponseEvent(response="Ada"))
    assert await handler == {"response": "Ada", "entries": 2, "note": None}


class Halfway(Event):
    pass


async def test_snapshot_taken_mid_step_reruns_only_the_unfinished_step() -> None:
    ran: list[str] = []

    class TwoStage(Workflow):
        def __init__(self, block: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.block = block

        @step
        async def first(self, ctx: Context, ev: StartEvent) -> Halfway:
            ran.append("first")
            return Halfway()

        @step
        async def second(self, ctx: Context, ev: Halfway) -> StopEvent:
            ran.append("second")
            ctx.write_event_to_stream(InputRequiredEvent(prefix="second started"))
            if self.block:
                await asyncio.Event().wait()
            return StopEvent(result="finished after resume")

    payload, _ = await _pause_at_prompt(TwoStage(block=True, timeout=5))
    workflow = TwoStage(block=False, timeout=5)
    restored = Context.from_dict(workflow, json.loads(json.dumps(payload)))
    assert await workflow.run(ctx=restored) == "finished after resume"
    assert ran == ["first", "second", "second"]


def _resume_in_new_process(tmp_path: Path, kind: str, serializer: str, payload: dict[str, Any], answer: str) -> Any:
    payload_file = tmp_path / f"{kind}-{serializer}.json"
    payload_file.write_text(json.dumps(payload), encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    code = "import sys; from support.pausable_workflows import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-c", code, kind, serializer, str(payload_file), answer],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("serializer", ["json", "pickle"])
async def test_run_paused_for_a_human_is_finished_by_another_process(tmp_path: Path, serializer: str) -> None:
    workflow = AskWorkflow(timeout=5)
    ctx: Context[Any] = Context(workflow)
    pickle = PickleSerializer() if serializer == "pickle" else None
    if pickle is not None:
        await ctx.store.set("note", Note("kept by pickle"))
    payload, _ = await _pause_at_prompt(workflow, ctx, pickle, question="color?")
    result = _resume_in_new_process(tmp_path, "ask", serializer, payload, "green")
    assert result == {
        "question": "color?",
        "response": "green",
        "asked": 1,
        "note": "kept by pickle" if serializer == "pickle" else None,
    }


@pytest.mark.parametrize("serializer", ["json", "pickle"])
async def test_step_waiting_for_an_event_is_finished_by_another_process(tmp_path: Path, serializer: str) -> None:
    workflow = WaitWorkflow(timeout=5)
    ctx: Context[Any] = Context(workflow)
    pickle = PickleSerializer() if serializer == "pickle" else None
    if pickle is not None:
        await ctx.store.set("note", Note("kept by pickle"))
    payload, streamed = await _pause_at_prompt(workflow, ctx, pickle)
    assert [ev.prefix for ev in streamed if isinstance(ev, InputRequiredEvent)] == ["name?"]
    result = _resume_in_new_process(tmp_path, "wait", serializer, payload, "Ada")
    assert result == {
        "response": "Ada",
        "entries": 2,  # once before the pause, once more when the answer arrived
        "note": "kept by pickle" if serializer == "pickle" else None,
    }


async def test_unserializable_state_cannot_be_saved_with_the_default_serializer() -> None:
    workflow = AskWorkflow(timeout=5)
    ctx: Context[Any] = Context(workflow)
    await ctx.store.set("note", Note("not json"))
    handler = workflow.run(ctx=ctx, question="q")
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            with pytest.raises(ValueError, match="note"):
                handler.ctx.to_dict()
            await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
