"""``WorkflowTestRunner`` collects what a run streams, counts it by type, and returns the result."""

from __future__ import annotations

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StepStateChanged, StopEvent
from workflows.testing import WorkflowTestRunner


class A(Event):
    pass


class TwoSteps(Workflow):
    @step
    async def first(self, ctx: Context, ev: StartEvent) -> A:
        ctx.write_event_to_stream(A())
        return A()

    @step
    async def second(self, ev: A) -> StopEvent:
        return StopEvent(result="done")


async def test_runner_collects_internal_events_counts_them_and_unwraps_the_result():  # checklist 76
    result = await WorkflowTestRunner(TwoSteps()).run()
    assert [type(e) for e in result.collected] == [
        StepStateChanged, A, StepStateChanged, StepStateChanged, StepStateChanged, StopEvent,
    ]
    assert result.event_types == {StepStateChanged: 4, A: 1, StopEvent: 1}
    assert result.result == "done"
    assert isinstance(result.ctx, Context)


async def test_runner_leaves_out_excluded_types_and_internal_events_on_request():  # checklist 76
    result = await WorkflowTestRunner(TwoSteps()).run(expose_internal=False, exclude_events=[StopEvent])
    assert [type(e) for e in result.collected] == [A]
    assert result.result == "done"
