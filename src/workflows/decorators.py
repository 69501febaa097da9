"""``@step`` and ``@catch_error``: how a function declares what it consumes and emits.

The decorators do not wrap the function: they inspect its signature once and attach a
``StepConfig`` as ``func._step_config``. Everything the runtime needs at dispatch time
(accepted types, which parameter gets the event, the context, resources) is worked out
here, so that invoking a step costs a dict look-up and a call.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol, TypeVar, Union, overload

from workflows._namespace import caller_namespace
from workflows.errors import WorkflowValidationError
from workflows.events import Event, StepFailedEvent

if TYPE_CHECKING:
    from workflows.resource import ResourceDefinition
    from workflows.retry_policy import LegacyRetryPolicy, RetryPolicy
    from workflows.workflow import Workflow

GraphCheck = Literal["reachability", "dead_end"]
_GRAPH_CHECKS = ("reachability", "dead_end")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class StepConfig:
    """What ``@step`` learned from a function's signature (introspectable, stable).

    ``accepted_events`` and ``return_types`` are the flattened event types of the event
    parameter and of the return annotation (``NoneType`` stands for "may emit nothing").
    ``context_state_type`` is ``S`` for a ``ctx: Context[S]`` parameter.
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


class StepFunction(Protocol):
    """A function decorated with ``@step``: the function itself, carrying its config."""

    _step_config: StepConfig
    __name__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class CatchErrorHandler:
    """A ``@catch_error`` handler as the runtime sees it: its step name and what it covers.

    ``for_steps`` is ``None`` for the wildcard handler. (Derived from the handler's
    ``StepConfig``; kept for code written against LlamaIndex Workflows.)
    """

    step_name: str
    for_steps: list[str] | None
    max_recoveries: int


def _is_event_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Event)


def _union_members(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        members: list[Any] = []
        for arg in typing.get_args(tp):
            members.extend(_union_members(arg))
        return members
    return [tp]


def _event_types(annotation: Any) -> list[type] | None:
    """The event types of an ``A``, ``A | B`` or ``Optional[A]`` annotation, else None."""
    members = [m for m in _union_members(annotation) if m is not type(None)]
    if members and all(_is_event_type(m) for m in members):
        return members
    return None


def _is_context_annotation(annotation: Any) -> tuple[bool, type | None]:
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type) and origin.__name__ == "Context":
        args = typing.get_args(annotation)
        state = args[0] if args and isinstance(args[0], type) else None
        return True, state
    return False, None


def _resolve_hints(func: Callable[..., Any], localns: dict[str, Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, globalns=getattr(func, "__globals__", None), localns=localns, include_extras=True)
    except NameError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise WorkflowValidationError(
            f"Failed to resolve type annotations for {func.__qualname__}. Missing name: {missing}. "
            "If you are using 'from __future__ import annotations', make sure the classes named in "
            "the step's annotations are importable from the module or defined before the step."
        ) from exc


def _build_config(
    func: Callable[..., Any],
    localns: dict[str, Any],
    *,
    num_workers: int,
    retry_policy: RetryPolicy | LegacyRetryPolicy | None,
    skip_graph_checks: list[str] | None,
    accept_event_subclasses: bool,
    role: Literal["step", "catch_error"] = "step",
) -> StepConfig:
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers <= 0:
        raise WorkflowValidationError("num_workers must be an integer greater than 0")
    if inspect.isasyncgenfunction(func):
        raise WorkflowValidationError(
            f"Async-iterator fan-out in step {func.__name__} is not supported. "
            "Return one event, or send several with ctx.send_event()."
        )
    for check in skip_graph_checks or []:
        if check not in _GRAPH_CHECKS:
            raise WorkflowValidationError(
                f"Unknown graph check name {check!r} in skip_graph_checks of step {func.__name__}. "
                f"Valid names are: {', '.join(_GRAPH_CHECKS)}"
            )

    hints = _resolve_hints(func, localns)
    from workflows.resource import find_resource_definitions

    resources = find_resource_definitions(hints)
    resource_names = {r.name for r in resources}

    event_name: str | None = None
    accepted: list[type] = []
    context_parameter: str | None = None
    state_type: type | None = None
    for name in inspect.signature(func).parameters:
        if name in ("self", "cls") or name not in hints or name in resource_names:
            continue
        annotation = hints[name]
        is_context, state = _is_context_annotation(annotation)
        if is_context:
            context_parameter, state_type = name, state
            continue
        if typing.get_origin(annotation) is typing.Annotated:
            continue  # other Annotated metadata: not ours to inject
        if typing.get_origin(annotation) is list:
            raise WorkflowValidationError(
                f"Step {func.__name__}: parameter {name!r} is annotated as a list of events; "
                "list-collect steps are not supported by this engine. Accept one event type and "
                "gather them with ctx.collect_events(ev, [...])."
            )
        event_types = _event_types(annotation)
        if event_types is None:
            continue
        if event_name is not None:
            raise WorkflowValidationError(
                f"Step {func.__name__} has two event parameters ({event_name!r} and {name!r}). "
                "Accept a union (ev: A | B) and use ctx.collect_events() to wait for several events."
            )
        event_name, accepted = name, event_types

    if event_name is None:
        raise WorkflowValidationError("Step signature must have at least one parameter annotated as type Event")
    if "return" not in hints:
        raise WorkflowValidationError("Return types of workflows step functions must be annotated with their type.")
    returns = hints["return"]
    origin = typing.get_origin(returns)
    if origin is not None and getattr(origin, "__name__", "") in ("AsyncIterator", "AsyncIterable", "AsyncGenerator"):
        raise WorkflowValidationError(
            f"Async-iterator fan-out in step {func.__name__} is not supported. "
            "Return one event, or send several with ctx.send_event()."
        )
    if returns is None or returns is type(None):
        return_types: list[Any] = [type(None)]
    else:
        return_types = [m for m in _union_members(returns) if m is not None and m is not type(None)]
    if any(typing.get_origin(m) is list for m in return_types):
        raise WorkflowValidationError(
            f"Step {func.__name__} is annotated to return a list of events; fan-out by returning a "
            "list is not supported by this engine. Send each event with ctx.send_event(...) and "
            "return None (annotate the step '-> EventType | None')."
        )

    return StepConfig(
        accepted_events=accepted,
        event_name=event_name,
        return_types=return_types,
        context_parameter=context_parameter,
        context_state_type=state_type,
        num_workers=num_workers,
        retry_policy=retry_policy,
        resources=resources,
        skip_graph_checks=list(skip_graph_checks or []),
        accept_event_subclasses=accept_event_subclasses,
        role=role,
        is_async=inspect.iscoroutinefunction(func),
    )


def _is_free_function(func: Callable[..., Any]) -> bool:
    parts = func.__qualname__.split(".")
    return len(parts) == 1 or parts[-2] == "<locals>"


@overload
def step(func: F) -> F: ...


@overload
def step(
    func: None = None,
    *,
    workflow: type[Workflow] | None = None,
    num_workers: int = 4,
    retry_policy: RetryPolicy | LegacyRetryPolicy | None = None,
    skip_graph_checks: list[GraphCheck] | None = None,
    accept_event_subclasses: bool = False,
) -> Callable[[F], F]: ...


def step(
    func: Callable[..., Any] | None = None,
    *,
    workflow: type[Workflow] | None = None,
    num_workers: int = 4,
    retry_policy: RetryPolicy | LegacyRetryPolicy | None = None,
    skip_graph_checks: list[GraphCheck] | None = None,
    accept_event_subclasses: bool = False,
) -> Any:
    """Mark a method (or, with ``workflow=``, a free function) as a workflow step.

    The step receives the events its event parameter is annotated with (a union accepts
    several types; matching is by exact type unless ``accept_event_subclasses``) and may
    emit the types of its return annotation; returning ``None`` emits nothing. A
    ``ctx: Context`` parameter (any name) receives the run's context, and
    ``Annotated[T, Resource(...)]`` parameters receive resources. Up to ``num_workers``
    invocations run at once; ``retry_policy`` decides whether a failure is retried.
    Signature problems raise ``WorkflowValidationError`` here, at decoration time.
    """
    localns = caller_namespace(1)

    def decorate(f: Callable[..., Any]) -> Any:
        config = _build_config(
            f,
            localns,
            num_workers=num_workers,
            retry_policy=retry_policy,
            skip_graph_checks=list(skip_graph_checks) if skip_graph_checks else None,
            accept_event_subclasses=accept_event_subclasses,
        )
        f._step_config = config  # type: ignore[attr-defined]
        if _is_free_function(f):
            if workflow is None:
                raise WorkflowValidationError(
                    f"To decorate {f.__name__} please pass a workflow class to the @step decorator."
                )
            workflow.add_step(f)
        return f

    if func is not None:
        return decorate(func)
    return decorate


def catch_error(
    func: Callable[..., Any] | None = None,
    *,
    for_steps: list[str] | None = None,
    max_recoveries: int = 1,
) -> Any:
    """Mark a method as the recovery handler of failed steps.

    The handler accepts exactly ``StepFailedEvent`` and receives it once a step's
    retries are exhausted, instead of the run failing; whatever it returns (a
    ``StopEvent`` to finish gracefully, or an event to re-enter the graph) is routed
    like any step's output. A bare ``@catch_error`` covers every step not claimed by a
    handler with ``for_steps``. Each handler recovers one chain of events at most
    ``max_recoveries`` times; past that, the run fails with the step's exception.
    """
    if isinstance(max_recoveries, bool) or not isinstance(max_recoveries, int) or max_recoveries < 1:
        raise WorkflowValidationError("@catch_error max_recoveries must be an integer >= 1")
    if for_steps is not None and (
        not isinstance(for_steps, list) or not all(isinstance(s, str) for s in for_steps)
    ):
        raise WorkflowValidationError("@catch_error for_steps must be None or a list of step name strings")
    localns = caller_namespace(1)

    def decorate(f: Callable[..., Any]) -> Any:
        config = _build_config(
            f,
            localns,
            num_workers=1,
            retry_policy=None,
            skip_graph_checks=None,
            accept_event_subclasses=False,
            role="catch_error",
        )
        if config.accepted_events != [StepFailedEvent]:
            raise WorkflowValidationError(
                f"@catch_error handler '{f.__name__}' must accept StepFailedEvent as its event parameter."
            )
        config.catch_error_for_steps = list(for_steps) if for_steps is not None else None
        config.max_recoveries = max_recoveries
        f._step_config = config  # type: ignore[attr-defined]
        return f

    if func is not None:
        return decorate(func)
    return decorate


__all__ = ["step", "catch_error", "StepConfig", "StepFunction", "CatchErrorHandler"]
