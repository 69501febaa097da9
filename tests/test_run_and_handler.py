"""Conformance: starting runs, routing, concurrency limits and the handler (API.md §2-§5)."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

from workflows import Context, Workflow, step
from workflows.errors import (
    WorkflowCancelledByUser,
    WorkflowRuntimeError,
    WorkflowTimeoutError,
    WorkflowValidationError,
)
from workflows.events import (
    Event,
    StartEvent,
    StepState,
    StepStateChanged,
    StopEvent,
    UnhandledEvent,
    WorkflowCancelledEvent,
    WorkflowTimedOutEvent,
)


class Job(Event):
    n: int = 0


class Done(Event):
    who: str = ""


class MyStart(StartEvent):
    q: str


class MyStop(StopEvent):
    critique: str


class Echo(Workflow):
    """Returns the start event it received, so tests can look at it."""

    @step
    async def s(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev)


# checklist 9
async def test_run_keyword_arguments_build_the_start_event() -> None:
    received = await Echo().run(topic="x")
    assert type(received) is StartEvent
    assert received.topic == "x"


# checklist 10
async def test_run_hands_the_given_start_event_object_to_the_first_step() -> None:
    class TypedStart(Workflow):
        @step
        async def s(self, ev: MyStart) -> StopEvent:
            return StopEvent(result=ev)

    start = MyStart(q="a")
    assert await TypedStart().run(start_event=start) is start


# checklist 11
async def test_run_rejects_a_start_event_that_is_not_a_start_event() -> None:
    with pytest.raises(ValueError, match="must be an instance of 'StartEvent'"):
        Echo().run(start_event=Job())  # type: ignore[arg-type]


# checklist 11
async def test_run_keywords_failing_a_typed_start_event_raise_workflow_runtime_error() -> None:
    class TypedStart(Workflow):
        @step
        async def s(self, ev: MyStart) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowRuntimeError) as info:
        TypedStart().run(wrong="field")
    assert str(info.value).startswith("Failed creating a start event of type")


# checklist 12
async def test_run_id_is_the_given_one_or_ten_random_alphanumerics() -> None:
    workflow = Echo()
    named = workflow.run(run_id="abc")
    assert named.run_id == "abc"
    generated = [workflow.run(), workflow.run()]
    for handler in generated:
        assert re.fullmatch(r"[A-Za-z0-9]{10}", handler.run_id)
    assert generated[0].run_id != generated[1].run_id
    await asyncio.gather(named, *generated)


# checklist 13
async def test_await_unwraps_plain_stop_events_but_returns_subclass_instances() -> None:
    class Plain(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result={"answer": 42})

    class Custom(Workflow):
        @step
        async def s(self, ev: StartEvent) -> MyStop:
            return MyStop(critique="fine")

    assert await Plain().run() == {"answer": 42}
    result = await Custom().run()
    assert isinstance(result, MyStop)
    assert result.critique == "fine"
    assert result.result is None


# checklist 14
async def test_awaiting_a_handler_twice_gives_the_same_value_and_it_is_done() -> None:
    handler = Echo().run(topic="t")
    assert not handler.is_done()
    first = await handler
    second = await handler
    assert first is second
    assert handler.is_done()


async def test_handler_works_with_asyncio_helpers_and_exposes_the_stop_event() -> None:
    workflow = Echo()
    wrapped = asyncio.ensure_future(workflow.run(topic="a"))
    assert (await wrapped).topic == "a"
    handler = workflow.run(topic="b", run_id="named-run")
    received = await asyncio.wait_for(handler, timeout=5)
    assert received.topic == "b"
    stop = await handler.stop_event_result()
    assert type(stop) is StopEvent and stop.result is received
    assert handler.get_stop_event() is stop
    assert str(handler).startswith(f"WorkflowHandler(workflow={workflow.workflow_name}, run_id=named-run, result=")


# checklist 30
async def test_step_returning_none_emits_nothing_and_the_run_times_out() -> None:
    class Silent(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return None  # type: ignore[return-value]

    handler = Silent(timeout=0.2).run()
    with pytest.raises(WorkflowTimeoutError, match="Operation timed out after 0.2 seconds. No steps active"):
        await handler
    internal = [ev async for ev in handler.stream_events(expose_internal=True)]
    assert not any(isinstance(ev, UnhandledEvent) for ev in internal)
    finished = [ev for ev in internal if isinstance(ev, StepStateChanged) and ev.step_state is StepState.NOT_RUNNING]
    assert [ev.output_event_name for ev in finished] == ["<class 'NoneType'>"]
    assert isinstance(internal[-1], WorkflowTimedOutEvent)


# checklist 31
async def test_broadcast_reaches_every_accepting_step_and_targeted_send_only_one() -> None:
    calls: list[tuple[str, str]] = []

    class Fanout(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Job | None:
            ctx.send_event(Job(n=1))
            ctx.send_event(Job(n=2), step="b")
            return None

        @step
        async def a(self, ev: Job) -> Done:
            calls.append(("a", str(ev.n)))
            return Done(who="a")

        @step
        async def b(self, ev: Job) -> Done:
            calls.append(("b", str(ev.n)))
            return Done(who="b")

        @step
        async def gather(self, ctx: Context, ev: Done) -> StopEvent | None:
            done = ctx.collect_events(ev, [Done] * 3)
            return None if done is None else StopEvent(result=sorted(d.who for d in done))

    assert await Fanout().run() == ["a", "b", "b"]
    assert sorted(calls) == [("a", "1"), ("b", "1"), ("b", "2")]


# checklist 32
async def test_targeted_send_to_unknown_step_or_wrong_type_raises_synchronously() -> None:
    class Sender(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> Job | StopEvent:
            errors = []
            for target, event in (("missing", Job()), ("t", Done())):
                try:
                    ctx.send_event(event, step=target)
                except WorkflowRuntimeError as exc:
                    errors.append(str(exc))
            return StopEvent(result=errors)

        @step
        async def t(self, ev: Job) -> StopEvent:
            return StopEvent()

    errors = await Sender().run()
    assert errors == [
        "Step missing does not exist",
        f"Step t does not accept event of type {Done!r}",
    ]


class Base(Event):
    pass


class Derived(Base):
    pass


class Finish(Event):
    pass


# checklist 33
async def test_exact_matching_does_not_deliver_subclasses() -> None:
    exact_calls: list[Event] = []

    class Exact(Workflow):
        @step
        async def s(self, ev: StartEvent) -> Derived:
            return Derived()

        @step
        async def exact(self, ev: Base) -> StopEvent:
            exact_calls.append(ev)
            return StopEvent(result="exact")

        @step
        async def finish(self, ev: Finish) -> StopEvent:
            return StopEvent(result="finish")

    with pytest.raises(WorkflowValidationError, match="consumed but never produced: Base"):
        Exact().validate()
    handler = Exact(disable_validation=True, timeout=5).run()
    async for ev in handler.stream_events(expose_internal=True):
        if isinstance(ev, UnhandledEvent) and ev.event_type == "Derived":
            handler.ctx.send_event(Finish())
    assert await handler == "finish"
    assert exact_calls == []


# checklist 33
async def test_accept_event_subclasses_delivers_subclasses() -> None:
    class Loose(Workflow):
        @step
        async def s(self, ev: StartEvent) -> Derived:
            return Derived()

        @step(accept_event_subclasses=True)
        async def loose(self, ev: Base) -> StopEvent:
            return StopEvent(result=type(ev).__name__)

    assert await Loose().run() == "Derived"


async def _peak_concurrency(workflow: Workflow, deliveries: int) -> tuple[int, list[StepStateChanged]]:
    """Run ``workflow`` (see ``Crowd``) and release its workers once every delivery was started or queued."""
    handler = workflow.run(count=deliveries)
    states: list[StepStateChanged] = []
    async for ev in handler.stream_events(expose_internal=True):
        if isinstance(ev, StepStateChanged) and ev.name == "work":
            states.append(ev)
            started = [s for s in states if s.step_state is StepState.RUNNING]
            queued = [s for s in states if s.step_state is StepState.PREPARING]
            if len(started) + len(queued) == deliveries:
                workflow.gate.set()  # type: ignore[attr-defined]
    await handler
    return workflow.peak, states  # type: ignore[attr-defined]


def _crowd(**step_kwargs: Any) -> type[Workflow]:
    class Crowd(Workflow):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.gate = asyncio.Event()
            self.active = 0
            self.peak = 0

        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Job | None:
            for n in range(ev.count):
                ctx.send_event(Job(n=n))
            return None

        @step(**step_kwargs)
        async def work(self, ev: Job) -> Done:
            self.active += 1
            self.peak = max(self.peak, self.active)
            await self.gate.wait()
            self.active -= 1
            return Done()

        @step
        async def gather(self, ctx: Context, ev: Done) -> StopEvent | None:
            return None if ctx.collect_events(ev, [Done] * 8) is None else StopEvent(result="all done")

    return Crowd


# checklist 34
async def test_default_num_workers_caps_concurrency_at_four() -> None:
    peak, states = await _peak_concurrency(_crowd()(timeout=5), deliveries=8)
    assert peak == 4
    assert len([s for s in states if s.step_state is StepState.PREPARING]) == 4


# checklist 34
async def test_single_worker_runs_deliveries_one_at_a_time_and_reports_enqueued() -> None:
    peak, states = await _peak_concurrency(_crowd(num_workers=1)(timeout=5), deliveries=8)
    assert peak == 1
    queued = [s for s in states if s.step_state is StepState.PREPARING]
    assert len(queued) == 7
    assert all(s.worker_id == "<enqueued>" for s in queued)


# checklist 35
async def test_first_stop_event_wins_and_a_later_one_is_ignored() -> None:
    release = threading.Event()
    slow_returned = threading.Event()

    class Race(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Job | Done | None:
            ctx.send_event(Job())
            ctx.send_event(Done())
            return None

        @step
        def slow(self, ev: Job) -> StopEvent:
            release.wait(5)
            slow_returned.set()
            return StopEvent(result="slow")

        @step
        async def fast(self, ev: Done) -> StopEvent:
            release.set()
            return StopEvent(result="fast")

    handler = Race().run()
    assert await handler == "fast"
    assert await asyncio.to_thread(slow_returned.wait, 5)
    assert await handler == "fast"
    stop = handler.get_stop_event()
    assert stop is not None and stop.result == "fast"


# checklist 44
async def test_timeout_publishes_timed_out_event_naming_active_steps_and_raises() -> None:
    class Stuck(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            await asyncio.Event().wait()
            return StopEvent()

    handler = Stuck(timeout=0.2).run()
    with pytest.raises(WorkflowTimeoutError) as info:
        await handler
    assert str(info.value) == "Operation timed out after 0.2 seconds. Currently active steps: s"
    events = [ev async for ev in handler.stream_events()]
    assert len(events) == 1
    timed_out = events[0]
    assert isinstance(timed_out, WorkflowTimedOutEvent)
    assert timed_out.timeout == 0.2
    assert timed_out.active_steps == ["s"]
    assert handler.get_stop_event() is None


# checklist 45
async def test_timeout_none_lets_a_long_step_finish() -> None:
    class Long(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            await asyncio.sleep(0.3)  # longer than the timed variant below allows
            return StopEvent(result="finished")

    assert await Long(timeout=None).run() == "finished"
    with pytest.raises(WorkflowTimeoutError):
        await Long(timeout=0.1).run()


# checklist 46
async def test_cancel_run_raises_cancelled_by_user_and_ends_the_stream_with_cancelled_event() -> None:
    started = asyncio.Event()

    class Waits(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            started.set()
            await asyncio.Event().wait()
            return StopEvent()

    handler = Waits().run()
    await started.wait()
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    events = [ev async for ev in handler.stream_events()]
    assert isinstance(events[-1], WorkflowCancelledEvent)
    assert isinstance(handler.get_stop_event(), WorkflowCancelledEvent)
    assert handler.is_done()
    await handler.cancel_run()  # safe on a finished run


# checklist 74
async def test_num_concurrent_runs_serialises_runs_of_one_instance() -> None:
    def build(limit: int | None) -> Any:
        class Counted(Workflow):
            active = 0
            peak = 0

            @step
            async def s(self, ev: StartEvent) -> StopEvent:
                type(self).active += 1
                type(self).peak = max(type(self).peak, type(self).active)
                for _ in range(5):  # let the other runs' steps interleave if they may
                    await asyncio.sleep(0)
                type(self).active -= 1
                return StopEvent(result=ev.i)

        return Counted(num_concurrent_runs=limit)

    limited = build(1)
    assert await asyncio.gather(*(limited.run(i=i) for i in range(3))) == [0, 1, 2]
    assert type(limited).peak == 1
    unlimited = build(None)
    await asyncio.gather(*(unlimited.run(i=i) for i in range(3)))
    assert type(unlimited).peak == 3


# checklist 74
@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_bad_num_concurrent_runs_is_rejected(limit: object) -> None:
    with pytest.raises(WorkflowValidationError, match="num_concurrent_runs must be an integer greater than 0 or None"):
        Echo(num_concurrent_runs=limit)  # type: ignore[arg-type]
