"""Checks of a workflow's step graph, run before its first run or by ``validate()``.

Each failure names the steps and event types involved and what to change; the groups
are checked in a fixed order and the first failing group raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

from workflows.errors import WorkflowConfigurationError, WorkflowValidationError
from workflows.events import (
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
    IdleReleasedEvent,
)

if TYPE_CHECKING:
    from workflows.runtime.steps import StepSpec
    from workflows.workflow import Workflow

GRAPH_CHECKS = ("dead_end", "reachability", "terminal_event")

# Stop events the runtime publishes itself: a step never declares them.
RUNTIME_STOP_EVENTS = (WorkflowTimedOutEvent, WorkflowCancelledEvent, WorkflowFailedEvent, IdleReleasedEvent)


def _names(types: Iterable[type]) -> str:
    return ", ".join(sorted(t.__name__ for t in types))


def start_and_stop_events(workflow_name: str, steps: dict[str, StepSpec]) -> tuple[type[StartEvent], type[StopEvent]]:
    """The workflow's start and stop event classes; ``WorkflowConfigurationError`` if not exactly one each."""
    starts: set[type] = set()
    stops: set[type] = set()
    for spec in steps.values():
        starts.update(t for t in spec.config.accepted_events if issubclass(t, StartEvent))
        stops.update(
            t
            for t in spec.config.return_types
            if isinstance(t, type) and issubclass(t, StopEvent) and not issubclass(t, RUNTIME_STOP_EVENTS)
        )
    if not starts:
        raise WorkflowConfigurationError(
            "At least one Event of type StartEvent must be received by any step. "
            f"(Workflow '{workflow_name}' has no @step that accepts StartEvent.)"
        )
    if len(starts) > 1:
        raise WorkflowConfigurationError(
            f"Only one type of StartEvent is allowed per workflow, found {len(starts)}: {starts} in workflow '{workflow_name}'."
        )
    if not stops:
        raise WorkflowConfigurationError(
            "At least one Event of type StopEvent must be returned by any step. "
            f"(Workflow '{workflow_name}' has no @step that returns StopEvent.)"
        )
    if len(stops) > 1:
        raise WorkflowConfigurationError(
            f"Only one type of StopEvent is allowed per workflow, found {len(stops)}: {stops} in workflow '{workflow_name}'."
        )
    return next(iter(starts)), next(iter(stops))


def error_handler_owners(steps: dict[str, StepSpec]) -> tuple[dict[str, str], list[str]]:
    """Which ``@catch_error`` handler owns each step, and the structural problems found."""
    handlers = {n: s for n, s in steps.items() if s.config.role == "catch_error"}
    plain = [n for n, s in steps.items() if s.config.role == "step"]
    problems: list[str] = []
    wildcards = sorted(n for n, s in handlers.items() if s.config.catch_error_for_steps is None)
    if len(wildcards) > 1:
        problems.append(
            f"Only one wildcard @catch_error handler is allowed per workflow, found {len(wildcards)}: {', '.join(wildcards)}"
        )
    owners: dict[str, str] = {}
    for name, spec in sorted(handlers.items()):
        for target in spec.config.catch_error_for_steps or []:
            if target not in steps:
                problems.append(f"@catch_error handler '{name}' lists unknown step '{target}' in for_steps.")
            elif target in handlers:
                problems.append(f"@catch_error handler '{name}' cannot cover another handler step '{target}'.")
            elif target in owners:
                problems.append(f"Step '{target}' is claimed by two @catch_error handlers: '{owners[target]}' and '{name}'.")
            else:
                owners[target] = name
    if len(wildcards) == 1:
        for name in plain:
            owners.setdefault(name, wildcards[0])
    return owners, problems


def check_collect_bindings(steps: dict[str, StepSpec], bindings: Mapping[str, tuple[str, ...]]) -> None:
    """Every ``list[E]`` collect step must be fed by a fan-out (a step returning ``list[...]``)."""
    fed = {name for collects in bindings.values() for name in collects}
    for name, spec in sorted(steps.items()):
        if spec.config.inputs != "collect" or name in fed:
            continue
        types = " | ".join(t.__name__ for t in spec.config.accepted_events)
        raise WorkflowValidationError(
            f"Step '{name}' parameter '{spec.config.collect_parameter}' collects list[{types}], but no step returning "
            "a list (a fan-out) starts a stream that carries those event types. A list[E] parameter only gathers the "
            "events of a stream a step annotated '-> list[...]' opened (and the 1:1 steps after it); for events sent "
            "with ctx.send_event, accept one event and gather them with ctx.collect_events(ev, [...])."
        )


def _consumes(spec: StepSpec, event_type: type) -> bool:
    if spec.config.accept_event_subclasses:
        return any(issubclass(event_type, t) for t in spec.config.accepted_events)
    return event_type in spec.config.accepted_events


def _returned(spec: StepSpec) -> list[type]:
    return [t for t in spec.config.return_types if t is not type(None) and isinstance(t, type)]


def check_connectivity(workflow: Workflow, steps: dict[str, StepSpec]) -> None:
    start_event = workflow.start_event_class
    takes_stop = sorted(n for n, s in steps.items() if any(issubclass(t, StopEvent) for t in s.config.accepted_events))
    if takes_stop:
        quoted = ", ".join(f"'{n}'" for n in takes_stop)
        subject = f"Step {quoted} cannot" if len(takes_stop) == 1 else f"Steps {quoted} cannot"
        raise WorkflowValidationError(
            f"{subject} accept StopEvent. StopEvent signals the end of the workflow. Use a different Event type instead."
        )
    produced = {start_event}
    for spec in steps.values():
        produced.update(_returned(spec))
    consumed_never_produced: set[type] = set()
    for spec in steps.values():
        for accepted in spec.config.accepted_events:
            if issubclass(accepted, (InputRequiredEvent, HumanResponseEvent, StopEvent, StepFailedEvent)):
                continue
            if spec.config.accept_event_subclasses:
                ok = any(issubclass(p, accepted) for p in produced)
            else:
                ok = accepted in produced
            if not ok:
                consumed_never_produced.add(accepted)
    if consumed_never_produced:
        raise WorkflowValidationError(
            f"The following events are consumed but never produced: {_names(consumed_never_produced)}"
        )
    produced_never_consumed: set[type] = set()
    for spec in steps.values():
        for returned in _returned(spec):
            if issubclass(returned, (InputRequiredEvent, HumanResponseEvent, StopEvent)):
                continue
            if not any(_consumes(s, returned) for s in steps.values()):
                produced_never_consumed.add(returned)
    if produced_never_consumed:
        raise WorkflowValidationError(
            f"The following events are produced but never consumed: {_names(produced_never_consumed)}"
        )


def check_graph(workflow: Workflow, steps: dict[str, StepSpec], skip: set[str]) -> None:
    problems: list[str] = []
    events_in_graph: set[type] = set()
    for spec in steps.values():
        events_in_graph.update(spec.config.accepted_events)
        events_in_graph.update(_returned(spec))

    if "reachability" not in skip:
        reached_events: set[type] = {workflow.start_event_class}
        reached_events.update(t for t in events_in_graph if issubclass(t, HumanResponseEvent))
        reached_steps = {n for n, s in steps.items() if s.config.role == "catch_error"}
        changed = True
        while changed:
            changed = False
            for name, spec in steps.items():
                if name not in reached_steps and any(_consumes(spec, t) for t in reached_events):
                    reached_steps.add(name)
                    changed = True
                if name in reached_steps:
                    new = set(_returned(spec)) - reached_events
                    if new:
                        reached_events |= new
                        changed = True
        unreachable = sorted(
            n for n, s in steps.items() if n not in reached_steps and "reachability" not in s.config.skip_graph_checks
        )
        if unreachable:
            problems.append(
                f"[reachability] Unreachable steps: {', '.join(unreachable)}\n"
                "    Steps must be reachable from StartEvent or HumanResponseEvent."
            )

    if "terminal_event" not in skip:
        terminal = {
            t
            for spec in steps.values()
            for t in _returned(spec)
            if not issubclass(t, (StopEvent, InputRequiredEvent)) and not any(_consumes(s, t) for s in steps.values())
        }
        if terminal:
            problems.append(
                f"[terminal_event] Events produced but never consumed: {_names(terminal)}\n"
                "    Only StopEvent and InputRequiredEvent may be terminal."
            )

    if "dead_end" not in skip:
        # Steps from which some StopEvent/InputRequiredEvent can be reached, found backwards.
        finishing: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, spec in steps.items():
                if name in finishing:
                    continue
                for t in _returned(spec):
                    if issubclass(t, (StopEvent, InputRequiredEvent)) or any(
                        n in finishing and _consumes(s, t) for n, s in steps.items()
                    ):
                        finishing.add(name)
                        changed = True
                        break
        dead = sorted(
            n
            for n, s in steps.items()
            if _returned(s) and n not in finishing and "dead_end" not in s.config.skip_graph_checks
        )
        if dead:
            problems.append(
                f"[dead_end] Dead-end steps: {', '.join(dead)}\n"
                "    Steps must have a path to StopEvent or InputRequiredEvent."
            )

    if problems:
        raise WorkflowValidationError("Graph validation failed:\n" + "\n".join(f"  - {p}" for p in problems))


def check_skip_names(names: Iterable[str]) -> set[str]:
    names = set(names)
    unknown = names - set(GRAPH_CHECKS)
    if unknown:
        raise WorkflowValidationError(
            f"Unknown graph check names: {', '.join(sorted(unknown))}. Valid names are: {', '.join(GRAPH_CHECKS)}"
        )
    return names
