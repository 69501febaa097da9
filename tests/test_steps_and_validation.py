"""Conformance: step declaration and workflow validation (API.md §3, §4.3, §4.4)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from workflows import Workflow, step
from workflows.errors import WorkflowConfigurationError, WorkflowRuntimeError, WorkflowValidationError
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent


class A(Event):
    pass


class B(Event):
    pass


class OtherStart(StartEvent):
    pass


class OtherStop(StopEvent):
    pass


# checklist 15
def test_workflow_without_a_start_step_fails_at_construction() -> None:
    class NoStart(Workflow):
        @step
        async def s(self, ev: A) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowConfigurationError, match="At least one Event of type StartEvent"):
        NoStart()


# checklist 16
def test_two_start_event_types_fail_at_construction() -> None:
    class TwoStarts(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def t(self, ev: OtherStart) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowConfigurationError, match="Only one type of StartEvent is allowed per workflow, found 2"):
        TwoStarts()


# checklist 16
def test_two_stop_event_types_fail_at_construction_even_without_validation() -> None:
    class TwoStops(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent | OtherStop:
            return StopEvent()

    with pytest.raises(WorkflowConfigurationError, match="Only one type of StopEvent is allowed per workflow, found 2"):
        TwoStops(disable_validation=True)


class ProducesUnconsumed(Workflow):
    @step
    async def s(self, ev: StartEvent) -> A | StopEvent:
        return StopEvent(result="ran")


# checklist 17
async def test_produced_but_never_consumed_event_fails_run_and_validate() -> None:
    expected = "The following events are produced but never consumed: A"
    with pytest.raises(WorkflowValidationError, match=expected):
        ProducesUnconsumed().validate()
    with pytest.raises(WorkflowValidationError, match=expected):
        ProducesUnconsumed().run()


# checklist 18
async def test_consumed_but_never_produced_event_fails_validation() -> None:
    class ConsumesUnproduced(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def t(self, ev: A) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError, match="The following events are consumed but never produced: A"):
        ConsumesUnproduced().run()


# checklist 19
def test_step_accepting_stop_event_fails_validation() -> None:
    class AcceptsStop(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def t(self, ev: StopEvent) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError, match="cannot accept StopEvent"):
        AcceptsStop().validate()


# checklist 20
def test_unreachable_steps_are_listed_sorted_in_graph_validation_error() -> None:
    class Unreachable(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def u(self, ev: B) -> A:
            return A()

        @step
        async def t(self, ev: A) -> B | StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError) as info:
        Unreachable().validate()
    message = str(info.value)
    assert "Graph validation failed:" in message
    assert "[reachability] Unreachable steps: t, u" in message


class DeadEndCycle(Workflow):
    @step
    async def s(self, ev: StartEvent) -> A | StopEvent:
        return StopEvent(result="done")

    @step
    async def t(self, ev: A) -> B:
        return B()

    @step
    async def u(self, ev: B) -> A:
        return A()


# checklist 21
async def test_cycle_without_path_to_stop_is_a_dead_end_unless_the_check_is_skipped() -> None:
    with pytest.raises(WorkflowValidationError, match=r"\[dead_end\] Dead-end steps: t, u"):
        DeadEndCycle().validate()
    lenient = DeadEndCycle(skip_graph_checks={"dead_end"})
    assert lenient.validate() is False
    assert await lenient.run() == "done"


# checklist 22
def test_unknown_graph_check_name_is_rejected_with_the_valid_names() -> None:
    with pytest.raises(WorkflowValidationError) as info:
        DeadEndCycle(skip_graph_checks={"foo"})
    message = str(info.value)
    assert "Unknown graph check names: foo" in message
    assert "dead_end, reachability, terminal_event" in message


# checklist 23
async def test_disable_validation_lets_an_invalid_workflow_run() -> None:
    assert await ProducesUnconsumed(disable_validation=True).run() == "ran"


# checklist 24
def test_human_in_the_loop_workflow_validates_and_reports_it() -> None:
    class Hitl(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def answer(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent(result=ev.response)

    assert Hitl().validate() is True
    assert DeadEndCycle(skip_graph_checks={"dead_end"}).validate() is False


# checklist 25
def test_step_without_event_parameter_is_rejected_at_decoration() -> None:
    with pytest.raises(WorkflowValidationError, match="at least one parameter annotated as type Event"):

        class NoEventParam(Workflow):
            @step
            async def s(self, x: int) -> StopEvent:
                return StopEvent()


# checklist 25
def test_step_without_return_annotation_is_rejected_at_decoration() -> None:
    with pytest.raises(WorkflowValidationError, match="Return types of workflows step functions must be annotated"):

        class NoReturn(Workflow):
            @step
            async def s(self, ev: StartEvent):
                return StopEvent()


# checklist 26
@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_non_positive_or_non_integer_num_workers_is_rejected(workers: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="num_workers must be an integer greater than 0"):

        class BadWorkers(Workflow):
            @step(num_workers=workers)
            async def s(self, ev: StartEvent) -> StopEvent:
                return StopEvent()


# checklist 27
def test_free_function_step_needs_a_workflow_class() -> None:
    with pytest.raises(WorkflowValidationError, match="please pass a workflow class to the @step decorator"):

        @step
        async def orphan(ev: StartEvent) -> StopEvent:
            return StopEvent()


def _register_finish(workflow_class: type[Workflow]) -> Callable[..., Any]:
    @step(workflow=workflow_class)
    async def finish(ev: A) -> StopEvent:
        return StopEvent(result="from free step")

    return finish


# checklist 27
async def test_free_function_step_registers_on_the_class_and_duplicates_are_rejected() -> None:
    class Host(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> A:
            return A()

    class Spare(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> A:
            return A()

    _register_finish(Host)
    assert await Host().run() == "from free step"
    assert await Host().run() == "from free step"  # every instance gets it

    spare_finish = _register_finish(Spare)  # same name, registered on another class
    with pytest.raises(WorkflowValidationError, match="A step finish is already part of this workflow"):
        Host.add_step(spare_finish)
    spare_finish.__name__ = "begin"
    with pytest.raises(WorkflowValidationError, match="A step begin is already part of this workflow"):
        Host.add_step(spare_finish)

    async def undecorated(ev: A) -> StopEvent:
        return StopEvent()

    with pytest.raises(WorkflowValidationError, match="missing the `@step` decorator"):
        Host.add_step(undecorated)


# checklist 28
async def test_sync_step_runs_in_a_worker_thread_and_its_result_is_routed() -> None:
    loop_thread = threading.get_ident()
    seen_threads: list[int] = []

    class SyncStep(Workflow):
        @step
        def blocking(self, ev: StartEvent) -> A:
            seen_threads.append(threading.get_ident())
            return A(value=ev.n + 1)

        @step
        async def finish(self, ev: A) -> StopEvent:
            return StopEvent(result=ev.value)

    assert await SyncStep().run(n=1) == 2
    assert len(seen_threads) == 1 and seen_threads[0] != loop_thread


# checklist 29
async def test_step_returning_a_non_event_fails_the_run() -> None:
    class ReturnsString(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return "foo"  # type: ignore[return-value]

    with pytest.raises(WorkflowRuntimeError) as info:
        await ReturnsString().run()
    assert str(info.value) == "Step function s returned str instead of an Event instance."


# --- issue 26: graph checks as llama-index-workflows 2.26.1 runs them -----------------------


class C(Event):
    pass


def test_the_reference_graph_messages_with_their_hints() -> None:
    class Mixed(Workflow):
        @step
        async def s1(self, ev: StartEvent) -> A | C | StopEvent:
            return StopEvent()

        @step
        async def s2(self, ev: A) -> B:
            return B()

        @step
        async def s3(self, ev: B) -> B:
            return B()

        @step
        async def s4(self, ev: C) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError) as info:
        Mixed().validate()
    assert str(info.value) == (
        "Graph validation failed:\n"
        "  - [dead_end] Dead-end steps: s2, s3\n"
        "    Steps must have a path to StopEvent or InputRequiredEvent."
    )


def test_skipping_terminal_event_does_not_allow_an_unconsumed_event() -> None:
    class Dangling(Workflow):
        @step
        async def s1(self, ev: StartEvent) -> A | StopEvent:
            return StopEvent()

    # As upstream, an event nobody consumes is refused by the connectivity check, which
    # skipping "terminal_event" does not turn off.
    for skip in (None, {"terminal_event"}):
        with pytest.raises(WorkflowValidationError, match="^The following events are produced but never consumed: A$"):
            Dangling(skip_graph_checks=skip).validate()


async def test_skip_graph_checks_names_on_steps_and_workflows() -> None:
    class Island(Workflow):
        @step
        async def s1(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="ok")

        @step(skip_graph_checks=["reachability"])
        async def s2(self, ev: A) -> B:
            return B()

        @step(skip_graph_checks=["reachability"])
        async def s3(self, ev: B) -> A | StopEvent:
            return A()

    assert await Island().run() == "ok"
    # A list works at the workflow level as well as a set.
    assert await Unreachable(skip_graph_checks=["reachability"]).run() == "ok"
    # "terminal_event" is a check of the workflow's events: upstream accepts it on a step and
    # ignores it; here too, with a warning saying where it belongs.
    with pytest.warns(UserWarning, match=r"skip_graph_checks=\['terminal_event'\] on step s has no effect"):

        class Marked(Workflow):
            @step(skip_graph_checks=["terminal_event"])
            async def s(self, ev: StartEvent) -> StopEvent:
                return StopEvent(result="ok")

    assert await Marked().run() == "ok"
    with pytest.raises(WorkflowValidationError, match="Unknown graph check name 'bogus' in skip_graph_checks of step s"):

        class Bogus(Workflow):
            @step(skip_graph_checks=["bogus"])
            async def s(self, ev: StartEvent) -> StopEvent:
                return StopEvent()


class Unreachable(Workflow):
    @step
    async def s(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="ok")

    @step
    async def u(self, ev: B) -> A:
        return A()

    @step
    async def t(self, ev: A) -> B | StopEvent:
        return StopEvent()
