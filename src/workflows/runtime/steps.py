"""A workflow's step as the run loop sees it: the callable and its compiled config.

``StepConfig`` is what ``@step`` compiles (``workflows.decorators`` builds it and
re-exports it); it lives here so that the runtime does not import the decorators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

# SpanKind is named once, by the tracing conventions (a leaf module of plain names).
from workflows.instrumentation.semconv import SpanKind

if TYPE_CHECKING:
    from workflows.resource import ResourceDefinition
    from workflows.retry_policy import LegacyRetryPolicy, RetryPolicy

StepInputs = Literal["event", "join", "collect"]
"""How a step receives its events: one event, a join of several, or a fan-out's batch."""


@dataclass
class StepConfig:
    """What ``@step`` learned from a function's signature (introspectable, stable).

    ``accepted_events`` and ``return_types`` are the flattened event types of the event
    parameter and of the return annotation (``NoneType`` stands for "may emit nothing").
    ``context_state_type`` is ``S`` for a ``ctx: Context[S]`` parameter.

    The advanced routing of 2.26 (``inputs``): a **join** (``"join"``) has several
    event parameters, ``event_parameters`` maps each to its one type, and the step runs
    once one event of each has arrived. A **collect** step (``"collect"``) has one
    ``list[E]`` parameter, ``collect_parameter``, and receives the batch of ``E`` of one
    fan-out stream (all of it, or the first ``collect_take``). A **fan-out** step
    returns ``list[...]``: ``fan_out_types`` are the types inside the list (also in
    ``return_types``), and ``fan_out_only`` those it may not return bare.
    """

    accepted_events: list[type]
    event_name: str
    return_types: list[type]
    context_parameter: str | None
    context_state_type: type | None = None
    num_workers: int = 4
    retry_policy: RetryPolicy | LegacyRetryPolicy | None = None
    resources: list[ResourceDefinition] = field(default_factory=list)
    skip_graph_checks: list[str] = field(default_factory=list)
    accept_event_subclasses: bool = False
    role: Literal["step", "catch_error"] = "step"
    catch_error_for_steps: list[str] | None = None
    max_recoveries: int = 1
    is_async: bool = True
    kind: SpanKind | None = None
    inputs: StepInputs = "event"
    event_parameters: dict[str, type] = field(default_factory=dict)
    collect_parameter: str | None = None
    collect_take: int | None = None
    fan_out_types: list[type] = field(default_factory=list)
    fan_out_only: frozenset[type] = frozenset()


@dataclass(eq=False)
class StepSpec:
    """One step as the runtime sees it: the callable and its compiled config."""

    name: str
    func: Callable[..., Any]
    config: StepConfig

    @property
    def num_workers(self) -> int:
        return self.config.num_workers

    def accepts(self, event_type: type) -> bool:
        if self.config.accept_event_subclasses:
            return any(issubclass(event_type, t) for t in self.config.accepted_events)
        return event_type in self.config.accepted_events
