"""Conformance: what a run's event stream carries and how it is consumed (API.md §6, §1.7)."""

from __future__ import annotations

import pytest

from workflows import Context, Workflow, step
from workflows.errors import WorkflowRuntimeError
from workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepState,
    StepStateChanged,
    StopEvent,
    UnhandledEvent,
    WorkflowIdleEvent,
)


class Progress(Event):
    i: int


class Middle(Event):
    pass


class Stray(Event):
    pass


class Writer(Workflow):
    """Writes three progress events from two steps; the event in between is only routed."""

    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Middle:
        ctx.write_event_to_stream(Progress(i=0))
        ctx.write_event_to_stream(Progress(i=1))
        return Middle()

    @step
    async def second(self, ctx: Context, ev: Middle) -> StopEvent:
        ctx.write_event_to_stream(Progress(i=2))
        return StopEvent(result="end")


# checklist 37
async def test_written_events_stream_in_order_before_the_stop_event_and_returned_events_do_not() -> None:
    handler = Writer().run()
    events = [ev async for ev in handler.stream_events()]
    assert [type(ev).__name__ for ev in events] == ["Progress", "Progress", "Progress", "StopEvent"]
    assert [ev.i for ev in events[:3]] == [0, 1, 2]
    assert events[-1].result == "end"
    assert await handler == "end"


# checklist 38
async def test_stream_ends_at_the_stop_event_and_cannot_be_consumed_twice() -> None:
    handler = Writer().run()
    events = [ev async for ev in handler.stream_events()]
    assert isinstance(events[-1], StopEvent)
    with pytest.raises(WorkflowRuntimeError, match="All the streamed events have already been consumed."):
        async for _ in handler.stream_events():
            pass
    await handler


# checklist 38
async def test_breaking_out_of_the_stream_early_lets_a_later_stream_continue() -> None:
    handler = Writer().run()
    async for ev in handler.stream_events():
        assert isinstance(ev, Progress) and ev.i == 0
        break
    rest = [ev async for ev in handler.stream_events()]
    assert [type(ev).__name__ for ev in rest] == ["Progress", "Progress", "StopEvent"]
    assert [ev.i for ev in rest[:2]] == [1, 2]


# checklist 39
async def test_streaming_after_the_run_finished_still_yields_everything() -> None:
    handler = Writer().run()
    assert await handler == "end"
    events = [ev async for ev in handler.stream_events()]
    assert [type(ev).__name__ for ev in events] == ["Progress", "Progress", "Progress", "StopEvent"]


# checklist 40
async def test_internal_stream_shows_step_state_changes_and_default_hides_them() -> None:
    class TwoSteps(Workflow):
        @step
        async def s1(self, ev: StartEvent) -> Middle:
            return Middle()

        @step
        async def s2(self, ev: Middle) -> StopEvent:
            return StopEvent(result="ok")

    handler = TwoSteps().run()
    internal = [ev async for ev in handler.stream_events(expose_internal=True)]
    changes = [(ev.name, ev.step_state) for ev in internal if isinstance(ev, StepStateChanged)]
    assert changes == [
        ("s1", StepState.RUNNING),
        ("s1", StepState.NOT_RUNNING),
        ("s2", StepState.RUNNING),
        ("s2", StepState.NOT_RUNNING),
    ]
    running = next(ev for ev in internal if isinstance(ev, StepStateChanged))
    assert running.worker_id == "0" and running.input_event_name == "StartEvent"
    assert isinstance(internal[-1], StopEvent)

    quiet = TwoSteps().run()
    assert [type(ev) for ev in [ev async for ev in quiet.stream_events()]] == [StopEvent]


# checklist 42
async def test_unhandled_external_event_is_reported_on_the_internal_stream() -> None:
    class Asks(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def answer(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent(result=ev.response)

    handler = Asks(timeout=5).run()
    unhandled: list[UnhandledEvent] = []
    async for ev in handler.stream_events(expose_internal=True):
        if isinstance(ev, WorkflowIdleEvent) and not unhandled:
            handler.ctx.send_event(Stray())
        elif isinstance(ev, UnhandledEvent):
            unhandled.append(ev)
            handler.ctx.send_event(HumanResponseEvent(response="r"))
    assert await handler == "r"
    assert len(unhandled) == 1
    report = unhandled[0]
    assert report.event_type == "Stray"
    assert report.qualified_name == f"{Stray.__module__}.Stray"
    assert report.idle is True
