"""Bridge to ``llama_index_instrumentation``, for code instrumented the LlamaIndex way.

Users of LlamaIndex Workflows watch runs through span and event handlers registered
on ``llama_index_instrumentation``'s dispatchers. This module replays our runs there:

* a run span ``"{WorkflowClass}.run-{uuid4}"`` (from the dispatcher
  ``"workflows.runtime.types.step_function"``), child of the caller's active span. It
  exits normally when the run completes or is cancelled with ``cancel_run()`` (after a
  ``SpanCancelledEvent``), and is dropped with the exception on failure, timeout or
  hard cancel;
* one step span ``"{step function __qualname__}-{uuid4}"`` per attempt of a step
  invocation (from ``"workflows.workflow"``), child of the run span, with the tags
  ``llamaindex.run_id``, ``llamaindex.step.input_event`` and
  ``llamaindex.step.input_summary``. It exits normally on success, when the step is
  parked by ``ctx.wait_for_event`` and when it is cancelled (after a
  ``SpanCancelledEvent``); it is dropped with the exception when the step raises;
* while a step runs, ``active_span_id`` is its span and ``active_instrument_tags`` its
  tags, so LlamaIndex code called from the step nests under it;
* the instrumentation events ``WorkflowStepOutputEvent`` ("step.output") when a step
  returns an event and ``WorkflowRunOutputEvent`` ("workflow.output") when a run
  completes, both with a summary of the event (see ``summarize_event``).

The bridge is added to the root dispatcher before the first run when the package is
installed, and follows a run only once the user's code has imported the package
(otherwise it costs a few attribute look-ups per run). It then always sets the run's
and the step's tags (for loggers that read ``active_instrument_tags``), and opens spans
only for the non-null span and event handlers registered on that package's dispatchers.

One trace per run: handlers that export llama-index spans to OpenTelemetry themselves
(OpenInference's ``LlamaIndexInstrumentor``, ``llama-index-observability-otel``; see
``OTEL_EXPORTING_HANDLERS``) are not sent the run and step spans while this engine's own
OpenTelemetry handler traces the run: the engine's spans are the run's trace, and the
spans those handlers make for llama-index calls inside a step become children of the
step's span, which is the current OpenTelemetry span while the step runs
(docs/tracing.md, "LlamaIndex instrumentation"). Those handlers would have put the
llama-index events that step code dispatches (``get_dispatcher().event(MyEvent(...))``) on
their copy of the step span; since they do not get it, such events (dispatched while no
llama-index span of theirs is open) become events of the engine's step span instead.
The event classes are built on first access (``from workflows.instrumentation.llamaindex
import SpanCancelledEvent``), as they subclass that package's ``BaseEvent``.

Not bridged: the ``inject``/``RunStarted.carrier`` path, so a run resumed from a
serialized context starts a new span tree instead of continuing the original one.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import sys
import uuid
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry.trace import NoOpTracer, ProxyTracer

from workflows._text import safe_text
from workflows.instrumentation.dispatcher import get_dispatcher, on_first_run
from workflows.instrumentation.events import (
    InstrumentationEvent,
    RunFinished,
    RunInfo,
    RunStarted,
    StepFinished,
    StepStarted,
    UserEvent,
)
from workflows.summary import summarize_event

if TYPE_CHECKING:
    from llama_index_instrumentation.base import BaseEvent
    from llama_index_instrumentation.dispatcher import Dispatcher as LlamaDispatcher

PACKAGE = "llama_index_instrumentation"
STEP_DISPATCHER = "workflows.workflow"
RUN_DISPATCHER = "workflows.runtime.types.step_function"

RUN_ID_TAG = "llamaindex.run_id"
START_EVENT_TAG = "llamaindex.start_event"
INPUT_EVENT_TAG = "llamaindex.step.input_event"
INPUT_SUMMARY_TAG = "llamaindex.step.input_summary"

# Modules whose span and event handlers export llama-index spans to OpenTelemetry: not sent
# the bridged run and step spans while this engine's OpenTelemetry handler traces the run.
OTEL_EXPORTING_HANDLERS = ("openinference.instrumentation.llama_index", "llama_index.observability.otel")

# While a step of a run whose spans those handlers were not sent runs: the step's bridged
# span id (None when no other handler made the bridge open one). llama-index events dispatched
# there are added to the engine's current OpenTelemetry span (the step span) instead.
class _EngineSpanTarget(NamedTuple):
    run: RunInfo
    step: str
    invocation_id: int
    bridged: tuple[str | None, ...]  # the bridged step and run span ids (None: not opened)


_events_to_engine_span: ContextVar[_EngineSpanTarget | None] = ContextVar(
    "workflows_llamaindex_events_to_engine_span", default=None
)

# The run span's bound arguments: what the run was started with.
_RUN_SIGNATURE = inspect.Signature(
    [inspect.Parameter("start_event", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
)


# --------------------------------------------------------------------------- event classes
@functools.lru_cache(maxsize=1)
def _event_classes() -> dict[str, type[BaseEvent]]:
    from llama_index_instrumentation.base import BaseEvent

    class SpanCancelledEvent(BaseEvent):
        """A span ended because its work was cancelled; ``reason`` says whose work."""

        reason: str

        @classmethod
        def class_name(cls) -> str:
            return "SpanCancelledEvent"

    class WorkflowStepOutputEvent(BaseEvent):
        """A step returned an event; ``output`` is its summary."""

        output: str

        @classmethod
        def class_name(cls) -> str:
            return "step.output"

    class WorkflowRunOutputEvent(BaseEvent):
        """A run completed; ``output`` is the summary of its stop event."""

        output: str

        @classmethod
        def class_name(cls) -> str:
            return "workflow.output"

    classes: list[type[BaseEvent]] = [SpanCancelledEvent, WorkflowStepOutputEvent, WorkflowRunOutputEvent]
    for cls in classes:
        # Importable under this name (module __getattr__), so pickling works.
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return {cls.__name__: cls for cls in classes}


def _engine_span_event_handler() -> Any:
    """A ``llama_index_instrumentation`` event handler that hands the events step code
    dispatches, in a run whose step spans the exporting handlers were not sent, to the
    engine as a user event: the engine's OpenTelemetry handler adds it to the step span."""
    from llama_index_instrumentation.event_handlers import BaseEventHandler
    from llama_index_instrumentation.span import active_span_id

    class EngineSpanEvents(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "EngineSpanEvents"

        def handle(self, event: BaseEvent, **kwargs: Any) -> Any:
            target = _events_to_engine_span.get()
            if target is None:
                return None
            span_id = event.span_id or active_span_id.get()
            if span_id is not None and span_id not in target.bridged:
                return None  # inside a llama-index span the exporting handlers have: theirs
            get_dispatcher().publish(
                UserEvent(
                    run=target.run,
                    name=event.class_name(),
                    attributes=_event_attributes(event),
                    step=target.step,
                    invocation_id=target.invocation_id,
                )
            )
            return None

    return EngineSpanEvents()


def _event_attributes(event: BaseEvent) -> dict[str, Any]:
    """The event's fields, nested mappings flattened to dotted keys (``tags.llamaindex.run_id``),
    as llama-index-observability-otel records them."""
    try:
        data = event.model_dump(mode="json")
    except Exception:  # a field that cannot be dumped: keep its text
        return {"event_data": safe_text(event)}
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = value

    walk("", data)
    return flat


def __getattr__(name: str) -> Any:
    if name in ("SpanCancelledEvent", "WorkflowStepOutputEvent", "WorkflowRunOutputEvent"):
        return _event_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- the package
class _Llama:
    """What the bridge uses from ``llama_index_instrumentation``, imported once."""

    def __init__(self) -> None:
        from llama_index_instrumentation import get_dispatcher as get_llama_dispatcher
        from llama_index_instrumentation.dispatcher import active_instrument_tags
        from llama_index_instrumentation.event_handlers import NullEventHandler
        from llama_index_instrumentation.events.span import SpanDropEvent
        from llama_index_instrumentation.span import active_span_id
        from llama_index_instrumentation.span_handlers import NullSpanHandler

        from workflows.runtime.scope import current_step_context

        self.run_dispatcher: LlamaDispatcher = get_llama_dispatcher(RUN_DISPATCHER)
        self.step_dispatcher: LlamaDispatcher = get_llama_dispatcher(STEP_DISPATCHER)
        self.active_span_id = active_span_id
        self.active_instrument_tags = active_instrument_tags
        self.null_handlers = (NullSpanHandler, NullEventHandler)
        self.span_drop_event = SpanDropEvent
        self.current_step_context = current_step_context
        events = _event_classes()
        self.span_cancelled_event = events["SpanCancelledEvent"]
        self.step_output_event = events["WorkflowStepOutputEvent"]
        self.run_output_event = events["WorkflowRunOutputEvent"]
        self.engine_span_events = _engine_span_event_handler()
        get_llama_dispatcher().add_event_handler(self.engine_span_events)

    def targets(self, dispatcher: LlamaDispatcher, skip_otel_exporters: bool) -> _Targets:
        """The non-null handlers that see what ``dispatcher`` sends (minus, with
        ``skip_otel_exporters``, those of ``OTEL_EXPORTING_HANDLERS``, counted in ``skipped``)."""
        span_handlers: list[Any] = []
        event_handlers: list[Any] = []
        skipped = 0
        node: LlamaDispatcher | None = dispatcher
        while node is not None:
            for found, handlers in ((span_handlers, node.span_handlers), (event_handlers, node.event_handlers)):
                for handler in handlers:
                    if isinstance(handler, self.null_handlers) or handler is self.engine_span_events:
                        continue
                    if skip_otel_exporters and type(handler).__module__.startswith(OTEL_EXPORTING_HANDLERS):
                        skipped += 1
                        continue
                    found.append(handler)
            node = node.parent if node.propagate else None
        return _Targets(span_handlers, event_handlers, skipped)


class _Targets:
    """The handlers a run's bridged spans and events go to, fixed when the run starts.

    Calls them as ``llama_index_instrumentation``'s dispatcher does (a handler that
    raises is skipped), but only them: see ``OTEL_EXPORTING_HANDLERS``.
    """

    __slots__ = ("span_handlers", "event_handlers", "skipped")

    def __init__(self, span_handlers: list[Any], event_handlers: list[Any], skipped: int = 0) -> None:
        self.span_handlers = span_handlers
        self.event_handlers = event_handlers
        self.skipped = skipped  # exporting handlers left out

    def __bool__(self) -> bool:
        return bool(self.span_handlers or self.event_handlers)

    def span_enter(self, **arguments: Any) -> None:
        self._each_span_handler("span_enter", arguments)

    def span_exit(self, **arguments: Any) -> None:
        self._each_span_handler("span_exit", arguments)

    def span_drop(self, **arguments: Any) -> None:
        self._each_span_handler("span_drop", arguments)

    def event(self, event: BaseEvent, tags: dict[str, Any]) -> None:
        event.tags.update(tags)
        for handler in self.event_handlers:
            try:
                handler.handle(event)
            except Exception:  # as llama_index_instrumentation does: a handler never breaks a run
                pass

    def _each_span_handler(self, method: str, arguments: dict[str, Any]) -> None:
        for handler in self.span_handlers:
            try:
                getattr(handler, method)(**arguments)
            except Exception:
                pass


@functools.lru_cache(maxsize=1)
def _llama() -> _Llama:
    return _Llama()


# --------------------------------------------------------------------------- the handler
class _OpenSpan:
    """A span the bridge entered (``span_id`` ``None``: only tags were set), and the
    context variables it set for it."""

    __slots__ = ("bound_args", "span_id", "tags_token", "span_token", "events_token")

    def __init__(
        self,
        span_id: str | None,
        bound_args: inspect.BoundArguments,
        tags_token: Token[Any],
        span_token: Token[Any] | None,
        events_token: Token[Any] | None = None,
    ) -> None:
        self.span_id = span_id
        self.bound_args = bound_args
        self.tags_token = tags_token
        self.span_token = span_token
        self.events_token = events_token

    def reset(self, llama: _Llama) -> None:
        llama.active_instrument_tags.reset(self.tags_token)
        if self.span_token is not None:
            llama.active_span_id.reset(self.span_token)
        if self.events_token is not None:
            _events_to_engine_span.reset(self.events_token)


class _RunSpans:
    """The bridge's state for one run (kept in ``run.scratch[bridge]``)."""

    __slots__ = ("run", "steps", "tags", "run_targets", "step_targets", "events_to_engine")

    def __init__(self, run: _OpenSpan, tags: dict[str, Any], run_targets: _Targets, step_targets: _Targets) -> None:
        self.run = run
        self.tags = tags  # the caller's instrument tags plus the run id
        self.run_targets = run_targets
        self.step_targets = step_targets
        self.steps: dict[tuple[str, int], _OpenSpan] = {}
        # Exporting handlers were left out: their step spans would have taken the step's events.
        self.events_to_engine = bool(run_targets.skipped or step_targets.skipped)


class LlamaIndexBridge:
    """Replays runs as ``llama_index_instrumentation`` tags, spans and events (see the module doc).

    Added to the root dispatcher automatically; add one yourself only if you removed it.
    Context variables are set on ``RunStarted``/``StepStarted`` and reset on the matching
    ``RunFinished``/``StepFinished``, which the runtime publishes in the same task.
    """

    def handle(self, event: InstrumentationEvent) -> bool | None:
        if isinstance(event, StepStarted):
            self._step_started(event)
        elif isinstance(event, StepFinished):
            self._step_finished(event)
        elif isinstance(event, RunStarted):
            return self._run_started(event)
        elif isinstance(event, RunFinished):
            self._run_finished(event)
        return None

    # -- run ----------------------------------------------------------------------
    def _run_started(self, event: RunStarted) -> bool:
        # Nobody can read the tags of, or register a handler on, a package never imported.
        if PACKAGE not in sys.modules or event.run is None:
            return False
        llama = _llama()
        run = event.run
        skip = _engine_traces(run)
        run_targets = llama.targets(llama.run_dispatcher, skip)
        step_targets = llama.targets(llama.step_dispatcher, skip)
        tags = {**llama.active_instrument_tags.get(), RUN_ID_TAG: run.run_id}
        bound_args = _RUN_SIGNATURE.bind(event.start_event)
        span_id: str | None = None
        span_token: Token[Any] | None = None
        if run_targets or step_targets:
            span_id = f"{_class_name(run)}.run-{uuid.uuid4()}"
            parent_id = llama.active_span_id.get()
            entering = tags
            if event.start_event is not None:
                entering = {**tags, START_EVENT_TAG: summarize_event(event.start_event)}
            entering_token = llama.active_instrument_tags.set(entering)
            try:
                run_targets.span_enter(id_=span_id, bound_args=bound_args, instance=event.workflow, parent_id=parent_id)
            finally:
                llama.active_instrument_tags.reset(entering_token)
            span_token = llama.active_span_id.set(span_id)
        opened = _OpenSpan(span_id, bound_args, llama.active_instrument_tags.set(tags), span_token)
        run.scratch[self] = _RunSpans(opened, tags, run_targets, step_targets)
        return True

    def _run_finished(self, event: RunFinished) -> None:
        state: _RunSpans | None = event.run.scratch.pop(self, None) if event.run is not None else None
        if state is None:
            return
        llama = _llama()
        span = state.run
        try:
            if span.span_id is None:
                return
            # Only a step that died of a BaseException the runtime does not catch leaves
            # its span open; drop it so handlers do not keep it forever.
            orphan_error = event.error or RuntimeError("the run ended before the step finished")
            for step in state.steps.values():
                if step.span_id is not None:
                    state.step_targets.span_drop(id_=step.span_id, bound_args=step.bound_args, err=orphan_error)
            targets = state.run_targets
            if event.status == "completed":
                if event.stop_event is not None:
                    targets.event(llama.run_output_event(output=summarize_event(event.stop_event)), state.tags)
                targets.span_exit(id_=span.span_id, bound_args=span.bound_args, result=event.stop_event)
            elif event.status == "cancelled" and not isinstance(event.error, asyncio.CancelledError):
                targets.event(llama.span_cancelled_event(reason="workflow cancelled by user"), state.tags)
                targets.span_exit(id_=span.span_id, bound_args=span.bound_args, result=None)
            else:
                _drop(llama, targets, span, event.error, state.tags)
        finally:
            span.reset(llama)

    # -- steps ----------------------------------------------------------------------
    def _step_started(self, event: StepStarted) -> None:
        state: _RunSpans | None = event.run.scratch.get(self) if event.run is not None else None
        if state is None:
            return
        llama = _llama()
        step_ctx = llama.current_step_context.get()
        spec = step_ctx._run.routes.steps.get(event.step) if step_ctx is not None and step_ctx._run else None
        tags = dict(state.tags)
        if event.event is not None:
            tags[INPUT_EVENT_TAG] = type(event.event).__name__
            tags[INPUT_SUMMARY_TAG] = summarize_event(event.event)
        tags_token = llama.active_instrument_tags.set(tags)
        if state.run.span_id is None:
            events_token = self._send_events_to_engine(state, event, None)
            state.steps[(event.step, event.invocation_id)] = _OpenSpan(
                None, _NO_ARGUMENTS, tags_token, None, events_token
            )
            return
        name = spec.func.__qualname__ if spec is not None else event.step
        span_id = f"{name}-{uuid.uuid4()}"
        arguments: dict[str, Any] = {}
        if spec is not None:
            arguments[spec.config.event_name] = event.event
            if spec.config.context_parameter is not None:
                arguments[spec.config.context_parameter] = step_ctx
        bound_args = _bind(spec.func if spec is not None else None, arguments)
        span_token = llama.active_span_id.set(span_id)
        events_token = self._send_events_to_engine(state, event, span_id)
        state.steps[(event.step, event.invocation_id)] = _OpenSpan(
            span_id, bound_args, tags_token, span_token, events_token
        )
        state.step_targets.span_enter(
            id_=span_id, bound_args=bound_args, instance=None, parent_id=state.run.span_id, tags=tags
        )

    @staticmethod
    def _send_events_to_engine(state: _RunSpans, event: StepStarted, span_id: str | None) -> Token[Any] | None:
        if not state.events_to_engine or event.run is None:
            return None
        return _events_to_engine_span.set(
            _EngineSpanTarget(event.run, event.step, event.invocation_id, (span_id, state.run.span_id))
        )

    def _step_finished(self, event: StepFinished) -> None:
        state: _RunSpans | None = event.run.scratch.get(self) if event.run is not None else None
        span = state.steps.pop((event.step, event.invocation_id), None) if state is not None else None
        if state is None or span is None:
            return
        llama = _llama()
        try:
            if span.span_id is None:
                return
            tags = llama.active_instrument_tags.get()
            targets = state.step_targets
            if event.outcome == "completed":
                if event.output is not None:
                    state.run_targets.event(llama.step_output_event(output=summarize_event(event.output)), tags)
                targets.span_exit(id_=span.span_id, bound_args=span.bound_args, result=event.output)
            elif event.outcome == "waiting":
                targets.span_exit(id_=span.span_id, bound_args=span.bound_args, result=None)
            elif event.outcome == "cancelled":
                state.run_targets.event(llama.span_cancelled_event(reason="step cancelled"), tags)
                targets.span_exit(id_=span.span_id, bound_args=span.bound_args, result=None)
            else:  # failed, or retrying: this attempt raised
                _drop(llama, targets, span, event.error, tags)
        finally:
            span.reset(llama)


_NO_ARGUMENTS = inspect.Signature().bind()


def _drop(
    llama: _Llama, targets: _Targets, span: _OpenSpan, error: BaseException | None, tags: dict[str, Any]
) -> None:
    targets.event(llama.span_drop_event(span_id=span.span_id, err_str=safe_text(error)), tags)
    targets.span_drop(id_=span.span_id, bound_args=span.bound_args, err=error)


def _engine_traces(run: RunInfo) -> bool:
    """Whether one of this engine's OpenTelemetry handlers traces ``run`` (or, when it has
    not seen the run yet, would: its tracer belongs to a configured SDK)."""
    from workflows.instrumentation.otel import OpenTelemetryHandler

    for handler in get_dispatcher().all_handlers():
        if isinstance(handler, OpenTelemetryHandler):
            if handler in run.scratch or not isinstance(handler.tracer, (NoOpTracer, ProxyTracer)):
                return True
    return False


def _bind(func: Any, arguments: dict[str, Any]) -> inspect.BoundArguments:
    """The step function's signature bound to what the step is called with (best effort)."""
    if func is not None:
        try:
            return inspect.signature(func).bind_partial(**arguments)
        except (TypeError, ValueError):
            pass
    return inspect.Signature().bind()


def _class_name(run: RunInfo) -> str:
    """The workflow's class ``__name__`` (``workflow_class`` is ``module.QualName``)."""
    return run.workflow_class.rpartition(".")[2] or run.workflow_name


def _install() -> None:
    if importlib.util.find_spec(PACKAGE) is None:
        return
    root = get_dispatcher()
    if not any(isinstance(handler, LlamaIndexBridge) for handler in root.handlers):
        root.add_handler(LlamaIndexBridge())


on_first_run(_install)

__all__ = ["LlamaIndexBridge", "summarize_event"]
