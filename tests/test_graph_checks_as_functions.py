"""The graph checks as functions of step configs (``workflows.representation.validate``), and the
private workflow accessors that runtimes and scripts written for the reference call
(``_get_steps``, ``_validate``, ``_get_start_event_instance``)."""

from __future__ import annotations

import logging

import pytest

from workflows import Workflow, step
from workflows.errors import WorkflowConfigurationError, WorkflowRuntimeError, WorkflowValidationError
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.representation.validate import GraphValidationError, build_step_graph, validate_graph


class Middle(Event):
    pass


class Orphan(Event):
    pass


class Spin(Event):
    pass


class Answer(HumanResponseEvent):
    pass


class Loopy(Workflow):
    """An unreachable step, a dangling event, and a cycle with no way out."""

    @step
    async def begin(self, ev: StartEvent) -> Spin | Orphan | StopEvent:
        return StopEvent()

    @step
    async def spin(self, ev: Spin) -> Spin:
        return Spin()

    @step
    async def island(self, ev: Middle) -> StopEvent:
        return StopEvent()


def configs(wf: Workflow) -> dict:
    return {name: func._step_config for name, func in wf._get_steps().items()}


def test_validate_graph_returns_every_failure_in_order_without_raising():
    errors = validate_graph(configs(Loopy(disable_validation=True)), StartEvent)

    assert [e.check for e in errors] == ["reachability", "terminal_event", "dead_end"]
    assert all(isinstance(e, GraphValidationError) for e in errors)
    unreachable, dangling, dead = errors
    assert unreachable.step_names == ("island",)
    assert dangling.message == "Events produced but never consumed: Orphan"
    assert dangling.event_types == (Orphan,)
    assert dead.step_names == ("spin",)
    assert str(dead) == "[dead_end] Dead-end steps: spin\n    Steps must have a path to StopEvent or InputRequiredEvent."


def test_validate_graph_skips_checks_for_the_workflow_or_one_step():
    steps = configs(Loopy(disable_validation=True))
    assert [e.check for e in validate_graph(steps, StartEvent, skip_checks={"reachability", "dead_end"})] == [
        "terminal_event"
    ]

    class Excused(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step(skip_graph_checks=["reachability"])
        async def island(self, ev: Middle) -> StopEvent:
            return StopEvent()

    assert validate_graph(configs(Excused()), StartEvent) == []


def test_workflow_raises_the_same_failures_validate_graph_returns():
    class Stranded(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def spin(self, ev: Spin) -> Spin:
            return Spin()

    with pytest.raises(WorkflowValidationError) as info:
        Stranded().validate()
    errors = validate_graph(configs(Stranded(disable_validation=True)), StartEvent)
    assert [e.check for e in errors] == ["reachability", "dead_end"]
    assert str(info.value) == "Graph validation failed:\n" + "\n".join(f"  - {e}" for e in errors)


def test_build_step_graph_links_events_to_steps_and_walks_both_ways():
    class HumanLoop(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent | Middle:
            return InputRequiredEvent()

        @step
        async def settle(self, ev: Answer) -> StopEvent:
            return StopEvent()

        @step
        async def note(self, ev: Middle) -> None:
            return None

        @step
        async def spin(self, ev: Spin) -> Spin:
            return Spin()

    graph = build_step_graph(configs(HumanLoop(disable_validation=True)), start_event_class=StartEvent)

    assert graph.step_names == {"ask", "settle", "note", "spin"}
    assert graph.outgoing[StartEvent] == {"ask"}
    assert graph.outgoing["ask"] == {InputRequiredEvent, Middle}
    assert "note" not in graph.outgoing  # returns only None
    assert type(None) not in graph.event_types
    # A human's answer is an input: what it reaches is reachable.
    assert {"ask", "settle", "note", Answer, Middle} <= graph.forward_reachable
    assert "spin" not in graph.forward_reachable
    assert {"ask", "settle", StopEvent} <= graph.reverse_reachable
    assert "spin" not in graph.reverse_reachable and "note" not in graph.reverse_reachable

    empty = build_step_graph({}, start_event_class=StartEvent)
    assert empty.outgoing == {} and empty.event_types == set() and empty.forward_reachable == {StartEvent}


class Pair(Workflow):
    @step
    async def first(self, ev: StartEvent) -> Middle:
        return Middle()

    @step
    async def second(self, ev: Middle) -> StopEvent:
        return StopEvent(result="done")


def added(ev: Middle) -> None:
    return None


def test_get_steps_gives_bound_methods_and_added_functions_with_their_config():
    class WithAdded(Pair):
        pass

    step(workflow=WithAdded)(added)
    wf = WithAdded()
    steps = wf._get_steps()

    assert set(steps) == {"first", "second", "added"}
    assert steps["first"].__self__ is wf  # type: ignore[attr-defined]
    assert steps["added"] is added
    assert steps["second"]._step_config.accepted_events == [Middle]  # type: ignore[attr-defined]


def test_underscore_validate_checks_the_steps_get_steps_returns():
    wf = Pair()
    assert wf._validate() is False  # no human in the loop

    only_second = {"second": wf._get_steps()["second"]}
    wf._get_steps = lambda: only_second  # type: ignore[method-assign]
    with pytest.raises(WorkflowConfigurationError, match="Workflow 'Pair' has no @step that accepts StartEvent"):
        wf._validate()

    wf._get_steps = lambda: {}  # type: ignore[method-assign]
    with pytest.raises(WorkflowConfigurationError, match="Workflow 'Pair' has no configured steps"):
        wf._validate()


def test_underscore_validate_does_nothing_when_validation_is_disabled():
    wf = Loopy(disable_validation=True)
    wf._get_steps = lambda: {}  # type: ignore[method-assign]
    assert wf._validate() is False
    with pytest.raises(WorkflowValidationError, match="consumed but never produced: Middle"):
        Loopy()._validate()


def test_get_start_event_instance_builds_what_run_would_send(caplog):
    class Topic(StartEvent):
        topic: str

    class Typed(Workflow):
        @step
        async def go(self, ev: Topic) -> StopEvent:
            return StopEvent(result=ev.topic)

    wf = Typed()
    built = wf._get_start_event_instance(None, topic="x")
    assert type(built) is Topic and built.topic == "x"

    given = Topic(topic="y")
    with caplog.at_level(logging.WARNING):
        assert wf._get_start_event_instance(given, ignored=1) is given
    assert "Keyword arguments are not supported" in caplog.text

    with pytest.raises(WorkflowRuntimeError, match="Failed creating a start event of type 'Topic'"):
        wf._get_start_event_instance(None, wrong=1)
