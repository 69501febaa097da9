"""What the runtime reads of a workflow, through its public face (``WorkflowShape``), and the
step metadata it owns (``StepConfig``, re-exported where users import it from)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Counted(BaseModel):
    n: int = 0


class MoreCounted(Counted):
    extra: str = ""


class Middle(Event):
    pass


def test_step_config_is_importable_from_the_decorators_and_the_runtime():
    from workflows import decorators
    from workflows.runtime import steps

    assert decorators.StepConfig is steps.StepConfig
    assert "StepConfig" in decorators.__all__

    class One(Workflow):
        @step
        async def only(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    assert isinstance(One.only._step_config, decorators.StepConfig)  # type: ignore[attr-defined]


def test_a_workflow_shows_its_steps_read_only_and_current():
    class Shaped(Workflow):
        @step
        async def begin(self, ctx: Context[Counted], ev: StartEvent) -> Middle | StopEvent:
            return Middle()

    specs = Shaped().step_specs
    assert list(specs) == ["begin"]
    assert specs["begin"].config.accepted_events == [StartEvent]
    with pytest.raises(TypeError):
        specs["other"] = specs["begin"]  # type: ignore[index]

    workflow = Shaped()

    @step(workflow=Shaped)
    async def finish(ctx: Context[MoreCounted], ev: Middle) -> StopEvent:
        return StopEvent()

    # Added to the class after the instance compiled its steps: the next read has it.
    assert workflow.context_state_type is MoreCounted
    assert sorted(workflow.step_specs) == ["begin", "finish"]


def test_a_workflow_without_a_state_annotation_uses_a_dict_state_and_disagreeing_ones_fail():
    from workflows.context.state_store import DictState

    class Plain(Workflow):
        @step
        async def only(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    assert Plain().context_state_type is DictState

    class Other(BaseModel):
        x: int = 0

    class Torn(Workflow):
        @step
        async def begin(self, ctx: Context[Counted], ev: StartEvent) -> Middle:
            return Middle()

        @step
        async def end(self, ctx: Context[Other], ev: Middle) -> StopEvent:
            return StopEvent()

    with pytest.raises(ValueError, match="Found: Counted, Other"):
        _ = Torn(disable_validation=True).context_state_type


async def test_a_saved_context_is_read_against_the_public_face():
    from workflows.runtime.snapshot import WorkflowShape, workflow_types

    class Saver(Workflow):
        @step
        async def begin(self, ctx: Context[Counted], ev: StartEvent) -> StopEvent:
            async with ctx.store.edit_state() as state:
                state.n += 1
            return StopEvent(result="done")

    workflow = Saver()
    shape: WorkflowShape = workflow
    assert {Counted, StartEvent, StopEvent} <= set(workflow_types(shape))
    ctx = Context(workflow)
    assert await workflow.run(ctx=ctx) == "done"
    restored = Context.from_dict(workflow, ctx.to_dict())
    assert (await restored.store.get_state()).n == 1
