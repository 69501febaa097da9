"""However a step ends, the run ends with it: each way out becomes the step's outcome.

A ``CancelledError`` the run did not cause, a ``BaseException`` that is not an
``Exception``: each is the step's failure and ``await handler`` raises it (a run with
``timeout=None`` must not hang). A sync step's thread that outlives its run is counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from workflows import Context, Workflow, step
from workflows.errors import WorkflowRuntimeError, WorkflowTimeoutError
from workflows.events import StartEvent, StopEvent
from workflows.instrumentation import get_dispatcher
from workflows.runtime.journal import RunFinished, StepFinished


class Records:
    """Collects the journal records of the runs that start while it is subscribed."""

    def __init__(self) -> None:
        self.records: list[object] = []

    def handle(self, record: object) -> None:
        self.records.append(record)


@pytest.fixture
def records():
    collector = Records()
    get_dispatcher().add_handler(collector)
    yield collector
    get_dispatcher().remove_handler(collector)


class Abort(BaseException):
    """Not an Exception: a step's ``except Exception`` would not catch it either."""


async def test_a_cancelled_inner_task_fails_the_step_instead_of_hanging_the_run(records: Records) -> None:
    class AwaitsCancelled(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            inner = asyncio.ensure_future(asyncio.sleep(10))
            asyncio.get_running_loop().call_soon(inner.cancel)  # other code cancels what the step awaits
            await inner
            return StopEvent(result="never")

    with pytest.raises(WorkflowRuntimeError, match="Step s was cancelled by code outside the run") as caught:
        await asyncio.wait_for(AwaitsCancelled(timeout=None).run(), 5)
    assert isinstance(caught.value.__cause__, asyncio.CancelledError)
    finished = [r for r in records.records if isinstance(r, StepFinished)]
    assert [r.outcome for r in finished] == ["failed"]


async def test_a_base_exception_in_a_step_reaches_the_caller(records: Records) -> None:
    class Aborts(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            raise Abort()

    with pytest.raises(Abort):
        await asyncio.wait_for(Aborts(timeout=None).run(), 5)
    ended = [r for r in records.records if isinstance(r, RunFinished)]
    assert ended[-1].status == "failed" and isinstance(ended[-1].error, Abort)


async def test_a_base_exception_is_not_retried_while_an_exception_is() -> None:
    from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed

    attempts = []

    class Aborts(Workflow):
        @step(retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3)))
        async def s(self, ev: StartEvent) -> StopEvent:
            attempts.append(1)
            raise Abort()

    with pytest.raises(Abort):
        await asyncio.wait_for(Aborts(timeout=None).run(), 5)
    assert len(attempts) == 1


async def test_a_sync_step_thread_left_running_by_a_timeout_is_counted_and_logged(
    records: Records, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    class Slow(Workflow):
        @step
        def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            release.wait(10)
            return StopEvent(result="late")

    try:
        with caplog.at_level(logging.WARNING, logger="workflows.runtime"), pytest.raises(WorkflowTimeoutError):
            await Slow(timeout=0.2).run()
    finally:
        release.set()
    ended = [r for r in records.records if isinstance(r, RunFinished)]
    assert ended[-1].detached_threads == 1
    assert "1 sync step thread(s) still ran" in caplog.text

