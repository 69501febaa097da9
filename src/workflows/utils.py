"""Step-signature helpers of LlamaIndex Workflows' ``workflows.utils`` (a compatibility module).

``llama_index.core.workflow.utils`` (llama-index-core 0.14) and its deprecated drawing
functions import these names. They describe steps with this engine's own rules (those of
``@step``, see ``workflows.decorators``): ``inspect_signature`` reports what a function
declares, ``validate_step_signature`` applies the rules ``@step`` enforces, and
``get_steps_from_class``/``get_steps_from_instance`` list the ``@step``-decorated
functions or bound methods of a workflow.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, cast

from workflows.decorators import StepFunction, _event_types, _is_context_annotation, _resolve_hints, _union_members
from workflows.errors import WorkflowValidationError
from workflows.resource import ResourceDefinition, find_resource_definitions

BUSY_WAIT_DELAY = 0.01
"""Seconds between two polls, in code that polls for a condition (kept for importers; the engine does not poll)."""


@dataclass(kw_only=True)
class StepSignatureSpec:
    """What a step function's signature declares.

    ``accepted_events`` maps each event parameter's name to its event types (a union gives
    several); ``return_types`` are the flattened return annotation (``NoneType`` for
    ``-> None``); ``context_parameter`` names the ``Context`` parameter, if any, and
    ``context_state_type`` is ``S`` of ``Context[S]``; ``resources`` are the
    ``Annotated[T, Resource(...)]`` parameters.
    """

    accepted_events: dict[str, list[Any]]
    return_types: list[Any]
    context_parameter: str | None
    context_state_type: Any | None = None
    resources: list[ResourceDefinition] = field(default_factory=list)


def inspect_signature(fn: Callable[..., Any], localns: dict[str, Any] | None = None) -> StepSignatureSpec:
    """Describe ``fn``'s signature the way ``@step`` reads it (no check is made: see ``validate_step_signature``).

    ``localns`` resolves names of string annotations defined in a local scope. Raises
    ``TypeError`` if ``fn`` is not callable, and ``WorkflowValidationError`` if its
    annotations name something that cannot be resolved.
    """
    if not callable(fn):
        raise TypeError(f"Expected a callable object, got {type(fn).__name__}")
    hints = _resolve_hints(fn, localns or {})
    resources = find_resource_definitions(hints)
    resource_names = {r.name for r in resources}
    accepted: dict[str, list[Any]] = {}
    context_parameter: str | None = None
    state_type: Any | None = None
    for name in inspect.signature(fn).parameters:
        if name in ("self", "cls") or name in resource_names or name not in hints:
            continue
        is_context, state = _is_context_annotation(hints[name])
        if is_context:
            context_parameter, state_type = name, state
            continue
        event_types = _event_types(hints[name])
        if event_types is not None:
            accepted[name] = list(event_types)
    return StepSignatureSpec(
        accepted_events=accepted,
        return_types=_get_return_types(fn, localns),
        context_parameter=context_parameter,
        context_state_type=state_type,
        resources=resources,
    )


def validate_step_signature(spec: StepSignatureSpec) -> None:
    """Raise ``WorkflowValidationError`` if ``spec`` is not a step this engine can run.

    A step needs exactly one event parameter (accept a union to take several types) and
    an annotated return type.
    """
    if not spec.accepted_events:
        raise WorkflowValidationError("Step signature must have at least one parameter annotated as type Event")
    if len(spec.accepted_events) > 1:
        names = ", ".join(repr(n) for n in spec.accepted_events)
        raise WorkflowValidationError(
            f"Step signature has several event parameters ({names}). Accept a union (ev: A | B) and use "
            "ctx.collect_events() to wait for several events."
        )
    if not spec.return_types:
        raise WorkflowValidationError("Return types of workflows step functions must be annotated with their type.")


def _is_step(obj: Any) -> bool:
    return hasattr(obj, "_step_config")


def get_steps_from_class(_class: object) -> dict[str, StepFunction]:
    """The ``@step`` functions of a workflow class, by name (methods, then free functions added to it)."""
    steps: dict[str, StepFunction] = {
        name: cast(StepFunction, method)
        for name, method in inspect.getmembers(_class, predicate=inspect.isfunction)
        if _is_step(method)
    }
    cls = _class if isinstance(_class, type) else type(_class)
    steps.update(getattr(cls, "_added_steps", {}))
    return steps


def get_steps_from_instance(workflow: object) -> dict[str, StepFunction]:
    """The ``@step`` methods of a workflow instance, bound to it, by name."""
    return {
        name: cast(StepFunction, method)
        for name, method in inspect.getmembers(workflow, predicate=inspect.ismethod)
        if _is_step(method)
    }


def _get_param_types(param: inspect.Parameter, type_hints: dict[str, Any]) -> list[Any]:
    """The types of ``param``'s annotation: the members of a union, ``None`` left out; ``[Any]`` if unannotated."""
    annotation = type_hints.get(param.name, param.annotation)
    if annotation is inspect.Parameter.empty:
        return [Any]
    return [t for t in _union_members(annotation) if t is not type(None)]


def _get_return_types(func: Callable[..., Any], localns: dict[str, Any] | None = None) -> list[Any]:
    """The members of ``func``'s return annotation (``[NoneType]`` for ``-> None``, ``[]`` if unannotated)."""
    hints = _resolve_hints(func, localns or {})
    if "return" not in hints:
        return []
    returns = hints["return"]
    if returns is None or returns is type(None):
        return [type(None)]
    members = [m for m in _union_members(returns) if m is not type(None)]
    return members or [type(None)]


def is_free_function(qualname: str) -> bool:
    """Whether ``qualname`` (a ``__qualname__``) names a module-level or nested function, not a method.

    Raises ``ValueError`` for an empty name.
    """
    if not qualname:
        raise ValueError("Invalid qualified name: it is empty")
    parts = qualname.split(".")
    return len(parts) == 1 or parts[-2] == "<locals>"


__all__ = [
    "BUSY_WAIT_DELAY",
    "StepSignatureSpec",
    "get_steps_from_class",
    "get_steps_from_instance",
    "inspect_signature",
    "is_free_function",
    "validate_step_signature",
]
