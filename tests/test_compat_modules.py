"""The compatibility modules that LlamaIndex's packages import: workflows.utils, context.utils,
context.external_context and runtime.types (their use by the real packages is in tests/compat_llamaindex)."""

from __future__ import annotations

from typing import Annotated

import pytest

from workflows import Context, Workflow, step
from workflows.errors import WorkflowValidationError
from workflows.events import Event, StartEvent, StopEvent
from workflows.resource import Resource


class Ask(Event):
    q: str


class Flow(Workflow):
    @step
    async def start(self, ev: StartEvent) -> Ask:
        return Ask(q="x")

    @step
    async def answer(self, ctx: Context, ev: Ask) -> StopEvent:
        ctx.send_event  # noqa: B018
        return StopEvent(result=ev.q)


def make_db() -> dict:
    return {}


def test_context_utils_name_and_import_classes():
    from workflows.context.utils import get_qualified_name, import_module_from_qualified_name

    assert get_qualified_name(Ask(q="a")) == f"{__name__}.Ask"
    assert import_module_from_qualified_name("workflows.events.StopEvent") is StopEvent
    # The reference's errors: a name without a dot, a missing module, a missing attribute.
    with pytest.raises(ValueError, match="^Qualified name must be in format 'module.attribute'$"):
        import_module_from_qualified_name("StopEvent")
    with pytest.raises(ImportError, match="^Failed to import module no_such_pkg.mod: No module named 'no_such_pkg'$"):
        import_module_from_qualified_name("no_such_pkg.mod.Thing")
    with pytest.raises(AttributeError, match="^Attribute Nope not found in module workflows.events: module "):
        import_module_from_qualified_name("workflows.events.Nope")
    with pytest.raises(AttributeError, match="^Object 7 does not have required attributes: 'int' object has no"):
        get_qualified_name(7)


def test_utils_describe_and_list_steps():
    from workflows.utils import (
        StepSignatureSpec,
        _get_return_types,
        get_steps_from_class,
        get_steps_from_instance,
        inspect_signature,
        is_free_function,
        validate_step_signature,
    )

    async def s(ctx: Context, ev: Ask | StartEvent, db: Annotated[dict, Resource(make_db)]) -> StopEvent | None:
        return None

    spec = inspect_signature(s)
    assert spec.accepted_events == {"ev": [Ask, StartEvent]}
    assert spec.context_parameter == "ctx" and [r.name for r in spec.resources] == ["db"]
    assert spec.return_types == [StopEvent] == _get_return_types(s)
    validate_step_signature(spec)
    with pytest.raises(WorkflowValidationError, match="at least one parameter"):
        validate_step_signature(StepSignatureSpec(accepted_events={}, return_types=[StopEvent], context_parameter=None))
    with pytest.raises(WorkflowValidationError, match="several event parameters"):
        validate_step_signature(
            StepSignatureSpec(accepted_events={"a": [Ask], "b": [StartEvent]}, return_types=[StopEvent], context_parameter=None)
        )
    assert set(get_steps_from_class(Flow)) == {"start", "answer"} == set(Flow._get_steps_from_class())
    bound = get_steps_from_instance(Flow())
    assert set(bound) == {"start", "answer"} and all(hasattr(m, "__self__") for m in bound.values())
    assert is_free_function("f") and is_free_function("outer.<locals>.f") and not is_free_function("Flow.start")


async def test_the_outside_face_of_a_run_carries_its_tick_log():
    import workflows.runtime.types.ticks  # noqa: F401 -- turns the tick log on
    from workflows.context.external_context import ExternalContext
    from workflows.runtime.types.results import StepWorkerResult, WaitingForEvent
    from workflows.runtime.types.ticks import TickAddEvent, TickStepResult

    handler = Flow().run()
    assert await handler == "x"
    face = handler.ctx._face
    assert isinstance(face, ExternalContext) and face == "external"
    ticks = face._tick_log
    assert isinstance(ticks[0], TickAddEvent) and isinstance(ticks[0].event, StartEvent)
    steps = [t for t in ticks if isinstance(t, TickStepResult)]
    assert [t.step_id for t in steps] == ["start", "answer"]
    produced = steps[0].result[0]
    assert isinstance(produced, StepWorkerResult) and produced.result is steps[1].event  # linked by identity
    assert issubclass(WaitingForEvent, BaseException) and not issubclass(WaitingForEvent, Exception)
