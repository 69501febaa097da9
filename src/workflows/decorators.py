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
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol, TypeVar, Union, overload

from workflows._namespace import caller_namespace
from workflows.collect import Collect, Take
from workflows.errors import WorkflowValidationError
from workflows.events import Event, StepFailedEvent
# SpanKind and SPAN_KINDS are re-exported (they were defined here first), and StepConfig,
# which the runtime owns.
from workflows.instrumentation.semconv import SPAN_KINDS as SPAN_KINDS
from workflows.instrumentation.semconv import SpanKind as SpanKind
from workflows.instrumentation.semconv import check_span_kind
from workflows.runtime.steps import StepConfig as StepConfig
from workflows.runtime.steps import StepInputs

if TYPE_CHECKING:
    from workflows.retry_policy import LegacyRetryPolicy, RetryPolicy
    from workflows.workflow import Workflow

GraphCheck = Literal["reachability", "dead_end"]
"""The graph checks a step can opt out of with ``@step(skip_graph_checks=[...])``."""
_GRAPH_CHECKS = ("reachability", "dead_end")
WorkflowGraphCheck = Literal["reachability", "terminal_event", "dead_end"]
"""The graph checks a workflow can opt out of with ``Workflow(skip_graph_checks={...})``."""

F = TypeVar("F", bound=Callable[..., Any])


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


def _list_event_types(annotation: Any) -> list[type] | None:
    """The event types of a ``list[E]`` or ``list[A | B]`` annotation, else None."""
    if typing.get_origin(annotation) is not list:
        return None
    args = typing.get_args(annotation)
    return _event_types(args[0]) if len(args) == 1 else None


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
            "Return one event, a list[E] of events (a fan-out), or send several with ctx.send_event()."
        )
    for check in skip_graph_checks or []:
        if check == "terminal_event":
            # Accepted (and ignored) by LlamaIndex Workflows on a step: it checks events, not steps.
            warnings.warn(
                f"skip_graph_checks=['terminal_event'] on step {func.__name__} has no effect: it is a check of the "
                "workflow's events; pass it to the workflow instead (Workflow(skip_graph_checks={'terminal_event'}))",
                UserWarning,
                stacklevel=3,
            )
        elif check not in _GRAPH_CHECKS:
            raise WorkflowValidationError(
                f"Unknown graph check name {check!r} in skip_graph_checks of step {func.__name__}. "
                f"Valid names are: {', '.join(_GRAPH_CHECKS)}"
            )

    hints = _resolve_hints(func, localns)
    from workflows.resource import find_resource_definitions

    resources = find_resource_definitions(hints)
    resource_names = {r.name for r in resources}

    event_params: list[tuple[str, list[type]]] = []
    collect: tuple[str, list[type], int | None] | None = None
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
        take: int | None = None
        if typing.get_origin(annotation) is typing.Annotated:
            markers = [m for m in annotation.__metadata__ if isinstance(m, Collect)]
            if not markers:
                continue  # other Annotated metadata: not ours to inject
            annotation = typing.get_args(annotation)[0]
            if _list_event_types(annotation) is None:
                raise WorkflowValidationError(
                    f"Step {func.__name__}: parameter {name!r} carries a Collect marker but is not annotated "
                    "list[E] of Event subclasses. Collect(...) only applies to a fan-in parameter such as "
                    "Annotated[list[MyEvent], Collect(Take(3))]."
                )
            cardinality = markers[-1].cardinality
            take = cardinality.n if isinstance(cardinality, Take) else None
        listed = _list_event_types(annotation)
        if listed is not None:
            if collect is not None:
                raise WorkflowValidationError(
                    f"Step {func.__name__} has two list[E] collect parameters ({collect[0]!r} and {name!r}); "
                    "a step collects the batch of one fan-out stream. Collect into one list[A | B], or use two steps."
                )
            collect = (name, listed, take)
            continue
        event_types = _event_types(annotation)
        if event_types is not None:
            event_params.append((name, event_types))

    if collect is not None and event_params:
        raise WorkflowValidationError(
            f"Step {func.__name__}: its list[E] collect parameter {collect[0]!r} cannot be combined with the event "
            f"parameter {event_params[0][0]!r}. Use one list[E] parameter (a fan-in), or several single-event "
            "parameters (a multi-slot join)."
        )
    if len(event_params) > 1:
        for name, types_ in event_params:
            if len(types_) != 1:
                raise WorkflowValidationError(
                    "Collect-mode steps (more than one event parameter) require each event parameter to declare "
                    f"a single event type, but parameter {name!r} of step {func.__name__} declares {len(types_)} "
                    f"({', '.join(t.__name__ for t in types_)}). Give each parameter one event type, or accept the "
                    "union in a step of its own."
                )
    inputs: StepInputs = "event"
    event_parameters: dict[str, type] = {}
    event_name: str | None = None
    accepted: list[type] = []
    if collect is not None:
        inputs, event_name, accepted = "collect", collect[0], collect[1]
    elif len(event_params) > 1:
        inputs, event_name = "join", event_params[0][0]
        event_parameters = {name: types_[0] for name, types_ in event_params}
        accepted = list(dict.fromkeys(event_parameters.values()))
    elif event_params:
        event_name, accepted = event_params[0]

    if event_name is None:
        raise WorkflowValidationError("Step signature must have at least one parameter annotated as type Event")
    if "return" not in hints:
        raise WorkflowValidationError("Return types of workflows step functions must be annotated with their type.")
    returns = hints["return"]
    origin = typing.get_origin(returns)
    if origin is not None and getattr(origin, "__name__", "") in ("AsyncIterator", "AsyncIterable", "AsyncGenerator"):
        raise WorkflowValidationError(
            f"Async-iterator fan-out in step {func.__name__} is not supported. "
            "Return one event, a list[E] of events (a fan-out), or send several with ctx.send_event()."
        )
    fan_out_types: list[type] = []
    bare_types: list[Any] = []
    if returns is None or returns is type(None):
        bare_types = [type(None)]
    else:
        for member in _union_members(returns):
            if member is None or member is type(None):
                continue
            listed = _list_event_types(member)
            if listed is not None:
                fan_out_types.extend(t for t in listed if t not in fan_out_types)
            else:
                bare_types.append(member)
    return_types = bare_types + [t for t in fan_out_types if t not in bare_types]

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
        inputs=inputs,
        event_parameters=event_parameters,
        collect_parameter=collect[0] if collect is not None else None,
        collect_take=collect[2] if collect is not None else None,
        fan_out_types=fan_out_types,
        fan_out_only=frozenset(t for t in fan_out_types if t not in bare_types),
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
    kind: SpanKind | None = None,
) -> Callable[[F], F]: ...


def step(
    func: Callable[..., Any] | None = None,
    *,
    workflow: type[Workflow] | None = None,
    num_workers: int = 4,
    retry_policy: RetryPolicy | LegacyRetryPolicy | None = None,
    skip_graph_checks: list[GraphCheck] | None = None,
    accept_event_subclasses: bool = False,
    kind: SpanKind | None = None,
) -> Any:
    """Mark a method (or, with ``workflow=``, a free function) as a workflow step.

    The step receives the events its event parameter is annotated with (a union accepts
    several types; matching is by exact type unless ``accept_event_subclasses``) and may
    emit the types of its return annotation; returning ``None`` emits nothing. A
    ``ctx: Context`` parameter (any name) receives the run's context, and
    ``Annotated[T, Resource(...)]`` parameters receive resources. Up to ``num_workers``
    invocations run at once; ``retry_policy`` decides whether a failure is retried.
    ``kind`` says what kind of work the step is for OpenInference (``"TOOL"``,
    ``"RETRIEVER"``, ``"LLM"``, ... see ``SpanKind``; default ``CHAIN``): traces show the
    step's span with that kind. ``"TOOL"`` also makes it a tool execution in OpenTelemetry's
    GenAI conventions (``gen_ai.tool.name`` from the input event's ``tool_name``, else the
    step's name; ``gen_ai.tool.call.id`` from its ``tool_call_id``, ``tool_id`` or
    ``call_id``), ``"AGENT"`` an agent invoked by the workflow (see docs/tracing.md). Signature problems raise ``WorkflowValidationError``
    here, at decoration time.
    """
    localns = caller_namespace(1)
    checked_kind = _span_kind(kind)

    def decorate(f: Callable[..., Any]) -> Any:
        config = _build_config(
            f,
            localns,
            num_workers=num_workers,
            retry_policy=retry_policy,
            skip_graph_checks=list(skip_graph_checks) if skip_graph_checks else None,
            accept_event_subclasses=accept_event_subclasses,
        )
        config.kind = checked_kind
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


def _span_kind(kind: Any) -> SpanKind | None:
    try:
        return check_span_kind(kind, "@step")
    except ValueError as exc:
        raise WorkflowValidationError(str(exc)) from None


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
