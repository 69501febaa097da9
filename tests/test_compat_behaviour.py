"""Behaviour details matched with LlamaIndex Workflows 2.26.1 (issue 14): start-event errors
without a loop, run id reuse, and what a finished run leaves behind."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class NotStart(Event):
    pass


class Echo(Workflow):
    @step
    async def s(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="ok")


class Parked(Workflow):
    @step
    async def s(self, ev: StartEvent) -> StopEvent:
        await asyncio.Event().wait()
        return StopEvent()


def test_a_start_event_of_the_wrong_type_is_reported_even_without_an_event_loop():
    with pytest.raises(ValueError, match="must be an instance of 'StartEvent'"):
        Echo().run(start_event=NotStart())
    with pytest.raises(RuntimeError, match="no running event loop"):
        Echo().run()


async def test_a_run_id_is_refused_while_its_run_is_live_and_free_once_it_ended():
    live = Parked(timeout=None).run(run_id="issue14-live")
    with pytest.raises(RuntimeError, match="already exists"):
        Echo().run(run_id="issue14-live")
    await live.cancel_run()
    assert await Echo().run(run_id="issue14-live") == "ok"


# The abandoned run's tasks are destroyed with their closed loop, which asyncio reports when
# they are collected; that is the point of the scenario, not a failure of this test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_run_id_is_free_again_after_an_unawaited_cancel_in_a_closed_loop():
    loop = asyncio.new_event_loop()

    async def start_and_abandon() -> None:
        Parked(timeout=None).run(run_id="issue14-closed")
        await asyncio.sleep(0)  # let the run start; it is never awaited and its loop closes under it

    loop.run_until_complete(start_and_abandon())
    loop.close()
    gc.collect()  # finalize the abandoned run here, not in whichever test runs next

    async def reuse() -> str:
        return await Echo().run(run_id="issue14-closed")

    assert asyncio.run(reuse()) == "ok"


async def test_finished_runs_leave_nothing_that_keeps_their_workflow_alive():
    # Timers (the run's timeout) hold their run weakly: a cancelled timer handle that
    # lingers in the loop's schedule keeps no workflow alive.
    refs = []
    for _ in range(5):
        wf = Echo(timeout=30)
        refs.append(weakref.ref(wf))
        assert await wf.run() == "ok"
        del wf
    gc.collect()
    assert [r for r in refs if r() is not None] == []
