"""However a run ends, it leaves no asyncio task behind (structured concurrency).

Each scenario ends a run while other step invocations are still in flight (and, where
it matters, while more deliveries are queued behind busy workers), then compares
``asyncio.all_tasks()`` with what existed before the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from workflows import Context, Workflow, step
from workflows.errors import WorkflowCancelledByUser, WorkflowTimeoutError
from workflows.events import Event, HumanResponseEvent, StartEvent, StepState, StepStateChanged, StopEvent
from workflows.handler import WorkflowHandler
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed


class Job(Event):
    n: int = 0


class Trigger(Event):
    pass


class Busy(Workflow):
    """Starts ``jobs`` blocked invocations of ``work`` (3 at a time, the rest queued).

    ``ending`` picks how the run ends while they are blocked: a ``Trigger`` step returns
    a StopEvent or raises; otherwise the test cancels the run or lets it time out.
    """

    def __init__(self, ending: str, jobs: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ending = ending
        self.jobs = jobs
        self.cancelled_invocations = 0

    @step
    async def start(self, ctx: Context, ev: StartEvent) -> Job | Trigger | None:
        for n in range(self.jobs):
            ctx.send_event(Job(n=n))
        return None

    @step(num_workers=3)
    async def work(self, ev: Job) -> StopEvent:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled_invocations += 1
            raise
        return StopEvent()

    @step
    async def finish(self, ev: Trigger) -> StopEvent:
        if self.ending == "failed":
            raise RuntimeError("failed while others work")
        return StopEvent(result="completed while others work")


async def _until_backlog(handler: WorkflowHandler, running: int, queued: int) -> None:
    """Stream internal events until ``work`` has ``running`` busy workers and ``queued`` waiting deliveries."""
    seen = {StepState.RUNNING: 0, StepState.PREPARING: 0}
    async for ev in handler.stream_events(expose_internal=True):
        if isinstance(ev, StepStateChanged) and ev.name == "work" and ev.step_state in seen:
            seen[ev.step_state] += 1
            if seen[StepState.RUNNING] == running and seen[StepState.PREPARING] == queued:
                return
    raise AssertionError(f"the run ended before the backlog formed: {seen}")


async def _end_busy_run(ending: str) -> Busy:
    workflow = Busy(ending, timeout=0.3 if ending == "timed_out" else 10)
    handler = workflow.run()
    await _until_backlog(handler, running=3, queued=5)
    if ending == "cancelled":
        await handler.cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handler
    elif ending == "timed_out":
        with pytest.raises(WorkflowTimeoutError, match="Currently active steps: work"):
            await handler
    else:
        handler.ctx.send_event(Trigger())
        if ending == "failed":
            with pytest.raises(RuntimeError, match="failed while others work"):
                await handler
        else:
            assert await handler == "completed while others work"
    return workflow


class Attempted(Event):
    pass


async def _cancel_pending_retry() -> None:
    class Retrying(Workflow):
        @step(retry_policy=retry_policy(wait=wait_fixed(30), stop=stop_after_attempt(3)))
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            ctx.write_event_to_stream(Attempted())
            raise ValueError("retry me later")

    handler = Retrying(timeout=10).run()
    async for ev in handler.stream_events():
        if isinstance(ev, Attempted):
            break  # the step has failed once and now sleeps before its retry
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler


async def _cancel_parked_waiter() -> None:
    class Parked(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            await ctx.wait_for_event(HumanResponseEvent, timeout=30)
            return StopEvent()

    handler = Parked(timeout=10).run()
    async for ev in handler.stream_events(expose_internal=True):
        if isinstance(ev, StepStateChanged) and ev.step_state is StepState.NOT_RUNNING:
            break
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler


async def _complete_plainly() -> None:
    class Plain(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="ok")

    assert await Plain().run() == "ok"


async def _hard_cancel() -> None:
    class Stuck(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            await asyncio.Event().wait()
            return StopEvent()

    handler = Stuck(timeout=10).run()
    async for ev in handler.stream_events(expose_internal=True):
        if isinstance(ev, StepStateChanged) and ev.step_state is StepState.RUNNING:
            break
    with pytest.warns(DeprecationWarning):
        handler.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handler


def _tasks_now() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if not t.done()}


@pytest.mark.parametrize("ending", ["completed", "failed", "timed_out", "cancelled"])
async def test_ending_a_run_with_steps_in_flight_and_a_backlog_leaves_no_task(ending: str) -> None:
    before = _tasks_now()
    workflow = await _end_busy_run(ending)
    assert _tasks_now() == before
    assert workflow.cancelled_invocations == 3  # the busy workers were stopped, the backlog never started


SCENARIOS: dict[str, Callable[[], Awaitable[None]]] = {
    "completed": _complete_plainly,
    "cancelled during retry delay": _cancel_pending_retry,
    "cancelled while parked in wait_for_event": _cancel_parked_waiter,
    "hard cancel": _hard_cancel,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_other_run_endings_leave_no_task(scenario: str) -> None:
    before = _tasks_now()
    await SCENARIOS[scenario]()
    assert _tasks_now() == before
