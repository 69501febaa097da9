"""Checks of a workflow's step graph, run before its first run or by ``validate()``.

Each failure names the steps and event types involved and what to change; the groups
are checked in a fixed order and the first failing group raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping, Union, get_args

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
from workflows.decorators import WorkflowGraphCheck
from workflows.runtime.steps import StepConfig

if TYPE_CHECKING:
    from workflows.runtime.steps import StepSpec

GRAPH_CHECKS = tuple(sorted(get_args(WorkflowGraphCheck)))

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


def check_connectivity(steps: dict[str, StepSpec], start_event: type) -> None:
    takes_stop = sorted(n for n, s in steps.items() if any(issubclass(t, StopEvent) for t in s.config.accepted_events))
    if takes_stop:
        quoted = ", ".join(f"'{n}'" for n in takes_stop)
        subject = f"Step {quoted} cannot" if len(takes_stop) == 1 else f"Steps {quoted} cannot"
        raise WorkflowValidationError(
            f"{subject} accept StopEvent. StopEvent signals the end of the workflow. Use a different Event type instead."
        )
    produced = {start_event}
    for spec in steps.values():
        produced.update(_returns(spec.config))
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
        for returned in _returns(spec.config):
            if issubclass(returned, (InputRequiredEvent, HumanResponseEvent, StopEvent)):
                continue
            if not any(_accepts(s.config, returned) for s in steps.values()):
                produced_never_consumed.add(returned)
    if produced_never_consumed:
        raise WorkflowValidationError(
            f"The following events are produced but never consumed: {_names(produced_never_consumed)}"
        )


GraphNode = Union[str, type]
"""A node of a ``StepGraph``: a step's name, or an event class."""

_OUTPUT_EVENTS = (StopEvent, InputRequiredEvent)


@dataclass
class StepGraph:
    """The step/event graph the checks walk, built by ``build_step_graph``.

    ``outgoing`` maps an event class to the steps that accept it, and a step's name to the
    event classes it returns; nodes with no edge out are absent. ``forward_reachable``
    holds what a run can get to from its inputs (the start event, the human's answers,
    ``@catch_error`` handlers); ``reverse_reachable`` what can lead to an output event
    (a ``StopEvent`` or an ``InputRequiredEvent``).
    """

    step_names: set[str] = field(default_factory=set)
    event_types: set[type] = field(default_factory=set)
    outgoing: dict[GraphNode, set[GraphNode]] = field(default_factory=dict)
    forward_reachable: set[GraphNode] = field(default_factory=set)
    reverse_reachable: set[GraphNode] = field(default_factory=set)


@dataclass(frozen=True)
class GraphValidationError:
    """One failed graph check: which check, what failed, how to fix it, and the steps involved."""

    check: WorkflowGraphCheck
    message: str
    hint: str
    step_names: tuple[str, ...] = ()
    event_types: tuple[type, ...] = ()

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}\n    {self.hint}"


def _accepts(config: StepConfig, event_type: type) -> bool:
    if config.accept_event_subclasses:
        return any(issubclass(event_type, t) for t in config.accepted_events)
    return event_type in config.accepted_events


def _returns(config: StepConfig) -> list[type]:
    return [t for t in config.return_types if t is not type(None) and isinstance(t, type)]


def _closure(seeds: Iterable[GraphNode], edges: Mapping[GraphNode, set[GraphNode]]) -> set[GraphNode]:
    seen = set(seeds)
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def build_step_graph(steps: Mapping[str, StepConfig], start_event_class: type) -> StepGraph:
    """The graph of ``steps`` (step name -> its ``StepConfig``) for a run started by ``start_event_class``."""
    graph = StepGraph(step_names=set(steps))
    for config in steps.values():
        graph.event_types.update(config.accepted_events)
        graph.event_types.update(_returns(config))
    incoming: dict[GraphNode, set[GraphNode]] = {}

    def link(source: GraphNode, target: GraphNode) -> None:
        graph.outgoing.setdefault(source, set()).add(target)
        incoming.setdefault(target, set()).add(source)

    for name, config in steps.items():
        for event_type in _returns(config):
            link(name, event_type)
    for event_type in graph.event_types | {start_event_class}:
        for name, config in steps.items():
            if _accepts(config, event_type):
                link(event_type, name)
    seeds: set[GraphNode] = {start_event_class}
    seeds.update(t for t in graph.event_types if issubclass(t, HumanResponseEvent))
    seeds.update(name for name, config in steps.items() if config.role == "catch_error")
    graph.forward_reachable = _closure(seeds, graph.outgoing)
    graph.reverse_reachable = _closure((t for t in graph.event_types if issubclass(t, _OUTPUT_EVENTS)), incoming)
    return graph


def validate_graph(
    steps: Mapping[str, StepConfig],
    start_event_class: type,
    skip_checks: Iterable[str] | None = None,
) -> list[GraphValidationError]:
    """Every graph check's failure for ``steps`` (step name -> ``StepConfig``), in a fixed order.

    ``skip_checks`` names checks to leave out for the whole workflow; a step's own
    ``skip_graph_checks`` leaves it out of the reachability and dead-end checks.
    """
    skip = set(skip_checks or ())
    graph = build_step_graph(steps, start_event_class)
    errors: list[GraphValidationError] = []
    if "reachability" not in skip:
        unreachable = sorted(
            name
            for name, config in steps.items()
            if name not in graph.forward_reachable and "reachability" not in config.skip_graph_checks
        )
        if unreachable:
            errors.append(
                GraphValidationError(
                    "reachability",
                    f"Unreachable steps: {', '.join(unreachable)}",
                    "Steps must be reachable from StartEvent or HumanResponseEvent.",
                    step_names=tuple(unreachable),
                )
            )
    if "terminal_event" not in skip:
        produced = {t for config in steps.values() for t in _returns(config)}
        dangling = sorted(
            (t for t in produced if not issubclass(t, _OUTPUT_EVENTS) and not graph.outgoing.get(t)),
            key=lambda t: t.__name__,
        )
        if dangling:
            producers = sorted(n for n, c in steps.items() if any(t in dangling for t in _returns(c)))
            errors.append(
                GraphValidationError(
                    "terminal_event",
                    f"Events produced but never consumed: {_names(dangling)}",
                    "Only StopEvent and InputRequiredEvent may be terminal.",
                    step_names=tuple(producers),
                    event_types=tuple(dangling),
                )
            )
    if "dead_end" not in skip:
        dead = sorted(
            name
            for name, config in steps.items()
            if name in graph.outgoing  # a step that returns nothing ends nowhere, by design
            and name not in graph.reverse_reachable
            and "dead_end" not in config.skip_graph_checks
        )
        if dead:
            errors.append(
                GraphValidationError(
                    "dead_end",
                    f"Dead-end steps: {', '.join(dead)}",
                    "Steps must have a path to StopEvent or InputRequiredEvent.",
                    step_names=tuple(dead),
                )
            )
    return errors


def check_graph(steps: dict[str, StepSpec], start_event_class: type, skip: set[str]) -> None:
    errors = validate_graph({name: spec.config for name, spec in steps.items()}, start_event_class, skip)
    if errors:
        raise WorkflowValidationError("Graph validation failed:\n" + "\n".join(f"  - {e}" for e in errors))


def check_skip_names(names: Iterable[str]) -> set[str]:
    names = set(names)
    unknown = names - set(GRAPH_CHECKS)
    if unknown:
        raise WorkflowValidationError(
            f"Unknown graph check names: {', '.join(sorted(unknown))}. Valid names are: {', '.join(GRAPH_CHECKS)}"
        )
    return names
