"""The OpenTelemetry handler: turns a run's instrumentation records into spans.

Span names, parents, links and attributes follow the trace contract (docs/tracing.md).
Parents are always passed explicitly (``start_span(context=...)``); the ambient context
is used only where it is the truth: the caller's span for a new run, and the current
span for ``@dispatcher.span`` functions and user events. While a step's own code runs,
its step span is attached as the current span, so spans the user or an instrumented
library opens inside the step nest under it.

With ``detail="steps"`` (or ``WORKFLOWS_TRACE_DETAIL=steps``) only run, step and wait
spans are spans: an emitted event or a state change becomes a span event of the same
name and attributes on the span that would have been its parent.

Two waits are derived from records that are not waits themselves: a step that returned
an ``InputRequiredEvent`` opens a ``wait`` span under the run span, closed by the next
event sent from outside the run (the answer) or by the end of the run; a failed attempt
that will be retried opens a ``backoff`` span, closed when the next attempt starts.

Only ``opentelemetry-api`` is used: with no SDK configured every span is non-recording,
``handle(RunStarted)`` answers ``False`` and the run publishes nothing more.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from contextvars import Token
from typing import Any, Callable, Mapping, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from workflows.events import InputRequiredEvent
from workflows.instrumentation._scope import TRACER_NAME, version
from workflows.instrumentation.events import (
    EventEmitted,
    InstrumentationEvent,
    RunFinished,
    RunInfo,
    RunStarted,
    SpanEntered,
    SpanExited,
    StateChanged,
    StepFinished,
    StepStarted,
    UserEvent,
    WaitEnded,
    WaitStarted,
)
from workflows.instrumentation.logs import install_log_correlation
from workflows.instrumentation.metrics import OpenTelemetryMetricsHandler
from workflows.instrumentation import semconv
from workflows.instrumentation.payloads import JSON, PayloadPolicy, Redactor, Rendered, dumps
from workflows.instrumentation.semconv import ERROR_TYPE, EXECUTE_TOOL, KIND
from workflows.instrumentation.settings import TraceDetail, gen_ai_span_names, trace_detail
_EMITTED_MEMORY = 4096  # emit span contexts kept per run, for step -> cause links
_RENDERED_MEMORY = 64  # rendered event payloads kept per run
_NOTHING_RENDERED: tuple[object, Rendered] = (object(), Rendered("", JSON, False))  # no event is it
_PROPAGATOR = TraceContextTextMapPropagator()
_OK = Status(StatusCode.OK)
_SESSION_KEY = "session.id"  # the context key OpenInference's using_session() sets
# One context key per handler, holding the handler's innermost attached span: with
# several handlers, it tells "another handler's span is current" from "a user span is".
_SPAN_KEYS: set[str] = set()
# What the answer to an InputRequiredEvent usually is; the wait span is renamed after the
# answer's actual type when it arrives.
_ANSWER_TYPE = "HumanResponseEvent"
_NO_KINDS: Mapping[str, str] = {}
# error.type of a span cut short by a timeout that has no exception of its own
_TIMEOUT = "timeout"
_OTHER = "_OTHER"  # the conventions' value for an error of no known type
# The context key under which the API keeps the current span (what set_span_in_context sets).
(_CURRENT_SPAN_KEY,) = trace.set_span_in_context(trace.INVALID_SPAN, otel_context.Context()).keys()


class _Open:
    """A span this handler started and has not ended: its context when other spans are
    parented to it, its token when it is attached as the current span, and its GenAI
    operation (``execute_tool``, ...) when it has one."""

    __slots__ = ("span", "context", "token", "operation")

    def __init__(
        self,
        span: Span,
        context: otel_context.Context | None = None,
        token: Token[otel_context.Context] | None = None,
    ) -> None:
        self.span = span
        self.context = context
        self.token = token
        self.operation: str | None = None


class _RunTrace:
    """Everything the handler keeps about one traced run (in ``run.scratch[handler]``)."""

    __slots__ = (
        "span", "context", "tracer", "common", "kinds", "steps", "waits", "input_waits", "backoffs",
        "user_spans", "emitted", "rendered", "last_rendered", "metered", "step_shapes", "emit_shapes",
    )  # fmt: skip

    def __init__(
        self, span: Span, tracer: Tracer, common: dict[str, Any], kinds: Mapping[str, str], metered: bool
    ) -> None:
        self.span = span
        self.context = trace.set_span_in_context(span, otel_context.Context())
        self.tracer = tracer
        self.common = common
        self.kinds = kinds  # the OpenInference kind of each step marked with @step(kind=...)
        self.steps: dict[tuple[str, int], _Open] = {}
        self.waits: dict[str, _Open] = {}
        # Runs waiting for an answer to an InputRequiredEvent a step returned, oldest first.
        self.input_waits: deque[_Open] = deque()
        self.backoffs: dict[tuple[str, int], _Open] = {}
        self.user_spans: dict[int, _Open] = {}
        # The emit span of each event id, oldest first.
        self.emitted: OrderedDict[str, SpanContext] = OrderedDict()
        # The same event is the emit span's input, its producer's output and its consumer's
        # input: render it once (keyed by identity; the event is kept so the id stays its own).
        self.rendered: dict[int, tuple[object, Rendered]] = {}
        # In a chain of steps, the three uses come one after the other.
        self.last_rendered: tuple[object, Rendered] = _NOTHING_RENDERED
        self.metered = metered  # whether the metrics handler follows the run too
        # What the spans of one step, or the emits of one event type, share: built once per run.
        self.step_shapes: dict[str, _StepShape] = {}
        self.emit_shapes: dict[tuple[str | None, type, str], _EmitShape] = {}

    def render_event(self, payloads: PayloadPolicy, event: object) -> Rendered:
        last = self.last_rendered
        if last[0] is event:
            return last[1]
        hit = self.rendered.get(id(event))
        if hit is None or hit[0] is not event:
            hit = self.rendered[id(event)] = (event, payloads.render(event))
            if len(self.rendered) > _RENDERED_MEMORY:
                del self.rendered[next(iter(self.rendered))]
        self.last_rendered = hit
        return hit[1]

    def parent_of(self, step: str | None, invocation_id: int | None) -> otel_context.Context:
        """The context of a step invocation's span, or the run's when it is not open."""
        if step is not None and invocation_id is not None:
            open_step = self.steps.get((step, invocation_id))
            if open_step is not None and open_step.context is not None:
                return open_step.context
        return self.context

    def parent_span_of(self, step: str | None, invocation_id: int | None) -> Span:
        """The span of a step invocation, or the run's when it is not open."""
        if step is not None and invocation_id is not None:
            open_step = self.steps.get((step, invocation_id))
            if open_step is not None:
                return open_step.span
        return self.span


class OpenTelemetryHandler:
    """Turns instrumentation records into OpenTelemetry spans (and, by default, metrics).

    ``tracer_provider`` / ``meter_provider`` default to the global providers, looked up
    when each run starts, so a provider installed after this handler was built is used.
    ``capture_content`` (default: ``WORKFLOWS_CAPTURE_CONTENT``, on), ``max_payload_bytes``
    (default: ``WORKFLOWS_MAX_PAYLOAD_BYTES``, 16 KiB) and ``redact`` govern payloads
    (see ``PayloadPolicy``); with content capture on, tool spans also carry their
    arguments and result as ``gen_ai.tool.call.arguments`` / ``.result``. ``detail`` is
    ``"full"`` (every span) or ``"steps"`` (run, step and wait spans; emitted events and
    state changes as span events on them);
    default: ``WORKFLOWS_TRACE_DETAIL``, else ``"full"``. ``metrics=False`` leaves
    metrics to another handler, and ``log_correlation=False`` leaves log records
    untouched (see ``logs.py``).

    Several may run side by side (say, one per backend, each with its own provider):
    each makes its step span current while the step runs, the runtime hands closing
    records to handlers in reverse order so they are detached in nesting order, and
    the span current in the step is that of the handler added last.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool | None = None,
        max_payload_bytes: int | None = None,
        redact: Redactor | None = None,
        *,
        detail: TraceDetail | None = None,
        metrics: bool = True,
        log_correlation: bool = True,
    ) -> None:
        self.payloads = PayloadPolicy(capture_content, max_payload_bytes, redact)
        self.detail: TraceDetail = trace_detail(detail)
        self._compact = self.detail == "steps"
        # Span names follow the GenAI conventions only when OpenTelemetry's opt-in says so.
        self._latest_names = gen_ai_span_names()
        self.metrics = OpenTelemetryMetricsHandler(meter_provider) if metrics else None
        self._tracer_provider = tracer_provider
        self._provider_seen: TracerProvider | None = None
        self._tracer: Tracer | None = None
        if log_correlation:
            # Installed with the handler (the default one is added before the first run),
            # so format strings naming these fields work whether or not a run is traced.
            install_log_correlation()
        self._user_spans: dict[int, _Open] = {}  # @dispatcher.span spans outside traced runs
        self._span_key = otel_context.create_key("workflows-handler-span")
        _SPAN_KEYS.add(self._span_key)
        # Each gets the record and the run's trace (None when this handler does not trace it).
        self._handlers: dict[type, Callable[[Any, _RunTrace | None], None]] = {
            StepStarted: self._step_started,
            StepFinished: self._step_finished,
            EventEmitted: self._event_emitted,
            StateChanged: self._state_changed,
            WaitStarted: self._wait_started,
            WaitEnded: self._wait_ended,
            RunFinished: self._run_finished,
            SpanEntered: self._span_entered,
            SpanExited: self._span_exited,
            UserEvent: self._user_event,
        }

    @property
    def tracer(self) -> Tracer:
        """The tracer of the configured provider, or of the current global one."""
        provider = self._tracer_provider if self._tracer_provider is not None else trace.get_tracer_provider()
        if provider is not self._provider_seen or self._tracer is None:
            self._tracer = provider.get_tracer(TRACER_NAME, version())
            self._provider_seen = provider
        return self._tracer

    # -- the dispatcher's interface ------------------------------------------------
    @property
    def follows_global_provider(self) -> bool:
        """True when spans go to the global tracer provider (no ``tracer_provider`` was given)."""
        return self._tracer_provider is None

    def handle(self, event: InstrumentationEvent) -> bool | None:
        """Record ``event``; for ``RunStarted``, answer whether this run is traced or metered."""
        if type(event) is RunStarted:
            # metrics first: if they raise, no run span has been opened that would leak
            metered = self.metrics is not None and self.metrics.handle(event) is not False
            return self._run_started(event, metered) or metered
        run = event.run
        traced: _RunTrace | None = run.scratch.get(self) if run is not None else None
        try:
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(event, traced)
        finally:
            # A traced run knows whether it is metered; any other run may be metered alone.
            if self.metrics is not None and (traced is None or traced.metered):
                self.metrics.handle(event)
        return None

    def inject(self, run: RunInfo, carrier: dict[str, str]) -> None:
        """Put the run span's W3C ``traceparent`` (and ``tracestate``) into ``carrier``,
        so a run resumed from a serialized Context continues this trace."""
        traced = run.scratch.get(self)
        if traced is not None:
            _PROPAGATOR.inject(carrier, context=traced.context)

    # -- runs ----------------------------------------------------------------------
    def _run_started(self, event: RunStarted, metered: bool) -> bool:
        run = event.run
        if run is None:
            return False
        tracer = self.tracer
        common = _common_attributes(run)
        # Everything a sampler may read is given at the start (the GenAI attributes too).
        attributes = {
            **common,
            KIND: "AGENT" if run.is_agent else "CHAIN",
            "workflow.resumed": event.resumed,
            "metadata": _metadata(run),
            **semconv.run_attributes(run.workflow_name, run.session_id, run.is_agent),
        }
        parent, links = self._run_parent(event)
        if parent is None:
            parent = self._ambient_parent()
        span = tracer.start_span(
            semconv.run_span_name(run.workflow_name, run.is_agent, self._latest_names),
            context=parent,
            attributes=attributes,
            links=links,
        )
        if not span.is_recording():
            return False
        if event.start_event is not None:
            span.set_attributes(_io(_INPUT, self.payloads.render(event.start_event)))
        run.scratch[self] = _RunTrace(span, tracer, common, _step_kinds(event.workflow), metered)
        return True

    @staticmethod
    def _run_parent(event: RunStarted) -> tuple[otel_context.Context | None, list[Link] | None]:
        """A resumed run continues the saved trace (the caller's span becomes a link);
        any other run is a child of the caller's current span."""
        if not (event.resumed and event.carrier):
            return None, None
        restored = _PROPAGATOR.extract(dict(event.carrier))
        if not trace.get_current_span(restored).get_span_context().is_valid:
            return None, None
        caller = trace.get_current_span().get_span_context()
        links = [Link(caller, {"workflow.link": "caller"})] if caller.is_valid else None
        return restored, links

    def _run_finished(self, event: RunFinished, traced: _RunTrace | None) -> None:
        if traced is None or event.run is None:
            return
        del event.run.scratch[self]
        span = traced.span
        try:
            attributes: dict[str, Any] = {"workflow.run.status": event.status}
            if event.status == "completed":
                _io(_OUTPUT, self.payloads.render(event.result), attributes)
            if event.status in ("failed", "timed_out"):
                attributes[ERROR_TYPE] = _error_type(event.error, _TIMEOUT if event.status == "timed_out" else _OTHER)
            span.set_attributes(attributes)
            if event.error is not None and event.status in ("failed", "timed_out"):
                self._record_exception(span, event.error)  # a cancel is not an error: no exception event
            if event.status == "completed":
                span.set_status(_OK)
            elif event.status == "failed":
                span.set_status(Status(StatusCode.ERROR, self.payloads.describe_exception(event.error, "the run failed")))
            elif event.status == "timed_out":
                span.set_status(
                    Status(StatusCode.ERROR, self.payloads.describe_exception(event.error, "the run timed out"))
                )
        finally:
            try:
                _end_leftovers(traced, event.status)
            finally:
                span.end()

    # -- steps ---------------------------------------------------------------------
    def _step_started(self, event: StepStarted, traced: _RunTrace | None) -> None:
        if traced is None:
            return
        run = event.run
        assert run is not None
        key = (event.step, event.invocation_id)
        if traced.backoffs:
            backoff = traced.backoffs.pop(key, None)
            if backoff is not None:  # the next attempt begins: the back-off is over
                backoff.span.set_status(_OK)
                backoff.span.end()
        shape = traced.step_shapes.get(event.step)
        if shape is None:
            shape = traced.step_shapes[event.step] = _step_shape(traced, run, event.step)
        attributes = shape.attributes.copy()
        attributes["workflow.step.attempt"] = event.attempt
        attributes["workflow.step.worker"] = event.worker
        rendered = None
        if event.event is not None:
            attributes["workflow.event.type"] = type(event.event).__name__
            rendered = traced.render_event(self.payloads, event.event)
            attributes[_INPUT_VALUE] = rendered.text  # _io(_INPUT, ...), inline on the hot path
            attributes[_INPUT_MIME_TYPE] = rendered.mime_type
            if rendered.truncated:
                attributes[_INPUT_TRUNCATED] = True
        name = shape.name
        operation = shape.operation
        if operation is not None:
            name = self._gen_ai_step(attributes, operation, event, rendered, run.session_id) or name
        links = None
        if event.event_id is not None:
            cause = traced.emitted.get(event.event_id)
            if cause is not None:
                links = [Link(cause)]
        span = traced.tracer.start_span(name, context=traced.context, attributes=attributes, links=links)
        opened = traced.steps[key] = self._attach(span, run.session_id)
        opened.operation = operation

    def _gen_ai_step(
        self,
        attributes: dict[str, Any],
        operation: str,
        event: StepStarted,
        rendered: Rendered | None,
        session_id: str,
    ) -> str | None:
        """Add the GenAI attributes of a step marked ``TOOL`` or ``AGENT``; the span's name
        under the GenAI conventions' opt-in, else ``None``."""
        if operation == EXECUTE_TOOL:
            subject = semconv.field_of(event.event, (semconv.TOOL_NAME_FIELD,)) or event.step
            call_id = semconv.field_of(event.event, semconv.TOOL_CALL_ID_FIELDS)
            attributes.update(semconv.operation_attributes(operation, subject, call_id=call_id))
            if rendered is not None and self.payloads.capture_content:
                attributes[semconv.TOOL_CALL_ARGUMENTS] = rendered.text
        else:  # an agent of a multi-agent workflow
            subject = event.step
            attributes.update(semconv.operation_attributes(operation, subject, session_id=session_id))
        return semconv.span_name(operation, subject) if self._latest_names else None

    def _step_finished(self, event: StepFinished, traced: _RunTrace | None) -> None:
        if traced is None:
            return
        opened = traced.steps.pop((event.step, event.invocation_id), None)
        if opened is None:
            return
        span = opened.span
        try:
            attributes: dict[str, Any] = {"workflow.step.outcome": event.outcome}
            if event.output is not None:
                output = traced.render_event(self.payloads, event.output)
                attributes[_OUTPUT_VALUE] = output.text  # _io(_OUTPUT, ...), inline on the hot path
                attributes[_OUTPUT_MIME_TYPE] = output.mime_type
                if output.truncated:
                    attributes[_OUTPUT_TRUNCATED] = True
                if opened.operation == EXECUTE_TOOL and self.payloads.capture_content:
                    attributes[semconv.TOOL_CALL_RESULT] = output.text
            if event.retry_delay is not None:
                attributes["workflow.step.retry_delay"] = event.retry_delay
            if event.error is not None and event.outcome != "retrying":
                attributes[ERROR_TYPE] = _error_type(event.error)
            elif event.outcome == "timed_out":
                attributes[ERROR_TYPE] = _TIMEOUT
            span.set_attributes(attributes)
            if event.error is not None:
                self._record_exception(span, event.error)
                if event.outcome != "retrying":
                    span.set_status(Status(StatusCode.ERROR, self.payloads.describe_exception(event.error, "failed")))
                # A failed attempt that will be retried keeps status UNSET: backends paint a trace
                # red when any span is an error, and a run that recovers has not failed. The
                # exception event and workflow.step.outcome=retrying still tell what happened.
            elif event.outcome == "completed":
                span.set_status(_OK)
            elif event.outcome == "timed_out":
                # What was still running when the run timed out is what took too long.
                span.set_status(Status(StatusCode.ERROR, "the run timed out while this step ran"))
            span.end()
            if event.outcome == "retrying":
                self._start_backoff(traced, event)
        finally:
            _detach(opened)

    def _start_backoff(self, traced: _RunTrace, event: StepFinished) -> None:
        """The time between a failed attempt and the next one, as a span of its own."""
        run = event.run
        assert run is not None
        attributes: dict[str, Any] = {
            **traced.common,
            KIND: "CHAIN",
            "workflow.step.name": event.step,
            "workflow.backoff.attempt": event.attempt + 1,  # the attempt it waits to start
        }
        if event.retry_delay is not None:
            attributes["workflow.step.retry_delay"] = event.retry_delay
        span = traced.tracer.start_span(f"backoff {event.step}", context=traced.context, attributes=attributes)
        previous = traced.backoffs.pop((event.step, event.invocation_id), None)
        if previous is not None:
            previous.span.end()
        traced.backoffs[(event.step, event.invocation_id)] = _Open(span)

    # -- events and state ----------------------------------------------------------
    def _event_emitted(self, event: EventEmitted, traced: _RunTrace | None) -> None:
        if traced is None:
            return
        shape_key = (event.step, type(event.event), event.source)
        shape = traced.emit_shapes.get(shape_key)
        if shape is None:
            shape = traced.emit_shapes[shape_key] = _emit_shape(traced, event, self._compact)
        attributes = shape.attributes.copy()
        attributes["workflow.event.id"] = event.event_id
        attributes["workflow.event.targets"] = event.targets  # a tuple: the SDK keeps it as is
        if event.event is not None:
            rendered = traced.render_event(self.payloads, event.event)
            attributes[_INPUT_VALUE] = rendered.text  # _io(_INPUT, ...), inline on the hot path
            attributes[_INPUT_MIME_TYPE] = rendered.mime_type
            if rendered.truncated:
                attributes[_INPUT_TRUNCATED] = True
        if traced.input_waits and event.source == "external":
            self._end_input_wait(traced, event)
        if self._compact:
            parent = traced.parent_span_of(event.step, event.invocation_id)
            parent.add_event(shape.name, attributes)
            emitted = parent.get_span_context()
        else:
            span = traced.tracer.start_span(
                shape.name, context=traced.parent_of(event.step, event.invocation_id), attributes=attributes
            )
            span.set_status(_OK)
            span.end()
            emitted = span.get_span_context()
        if event.event_id:
            remembered = traced.emitted
            remembered[event.event_id] = emitted
            if len(remembered) > _EMITTED_MEMORY:
                remembered.popitem(last=False)
        if shape.requests_input:
            self._start_input_wait(traced, event, shape.type_name)

    def _start_input_wait(self, traced: _RunTrace, event: EventEmitted, request_type: str) -> None:
        """A step returned (or sent) an ``InputRequiredEvent``: the run now waits for an
        answer from outside. (``ctx.wait_for_event`` writes its request to the stream and
        has a wait span of its own.)"""
        attributes: dict[str, Any] = {
            **traced.common,
            KIND: "CHAIN",
            "workflow.step.name": event.step,
            "workflow.event.type": _ANSWER_TYPE,
            "workflow.wait.id": self.payloads.render_text(event.event_id),
            "workflow.wait.request": request_type,
        }
        assert event.event is not None
        _io(_INPUT, traced.render_event(self.payloads, event.event), attributes)
        span = traced.tracer.start_span(f"wait {_ANSWER_TYPE}", context=traced.context, attributes=attributes)
        traced.input_waits.append(_Open(span))

    def _end_input_wait(self, traced: _RunTrace, event: EventEmitted) -> None:
        """An event came from outside the run: the answer to the oldest open request."""
        opened = traced.input_waits.popleft()
        span = opened.span
        try:
            answer = type(event.event).__name__ if event.event is not None else "Event"
            if answer != _ANSWER_TYPE:
                span.update_name(f"wait {answer}")
            attributes: dict[str, Any] = {"workflow.wait.outcome": "received", "workflow.event.type": answer}
            if event.event is not None:
                _io(_OUTPUT, traced.render_event(self.payloads, event.event), attributes)
            span.set_attributes(attributes)
            span.set_status(_OK)
        finally:
            span.end()

    def _state_changed(self, event: StateChanged, traced: _RunTrace | None) -> None:
        if traced is None:
            return
        diff = self.payloads.render_state_change(event.path, event.before, event.after)
        attributes: dict[str, Any] = {} if self._compact else dict(traced.common)
        attributes.update({
            KIND: "CHAIN",
            "workflow.state.keys": list(event.keys),
            "workflow.state.diff": diff.text,
            **_io(_OUTPUT, diff),
        })  # fmt: skip
        if diff.truncated:
            attributes["workflow.state.diff.truncated"] = True
        if event.step is not None:
            attributes["workflow.step.name"] = event.step
        if self._compact:  # a span event on the span it would have been a child of
            traced.parent_span_of(event.step, event.invocation_id).add_event(f"state.{event.op}", attributes)
            return
        span = traced.tracer.start_span(
            f"state.{event.op}",
            context=traced.parent_of(event.step, event.invocation_id),
            attributes=attributes,
        )
        span.set_status(_OK)
        span.end()

    # -- waits ---------------------------------------------------------------------
    def _wait_started(self, event: WaitStarted, traced: _RunTrace | None) -> None:
        if traced is None:
            return
        type_name = event.event_type.__name__ if event.event_type is not None else "Event"
        attributes: dict[str, Any] = {
            **traced.common,
            KIND: "CHAIN",
            "workflow.step.name": event.step,
            "workflow.event.type": type_name,
            "workflow.wait.id": self.payloads.render_text(event.waiter_id),
        }
        if event.timeout is not None:
            attributes["workflow.wait.timeout"] = event.timeout
        if event.requirements:
            _io(_INPUT, self.payloads.render(event.requirements), attributes)
        previous = traced.waits.pop(event.waiter_id, None)
        if previous is not None:  # the step re-ran and waits again: the old wait is over
            previous.span.end()
        span = traced.tracer.start_span(
            f"wait {type_name}",
            context=traced.parent_of(event.step, event.invocation_id),
            attributes=attributes,
        )
        traced.waits[event.waiter_id] = _Open(span)

    def _wait_ended(self, event: WaitEnded, traced: _RunTrace | None) -> None:
        if traced is None:
            return
        opened = traced.waits.pop(event.waiter_id, None)
        if opened is None:
            return
        span = opened.span
        try:
            attributes: dict[str, Any] = {"workflow.wait.outcome": event.outcome}
            if event.event is not None:
                _io(_OUTPUT, self.payloads.render(event.event), attributes)
            span.set_attributes(attributes)
            if event.outcome == "received":
                span.set_status(_OK)
            elif event.outcome == "timed_out":
                span.set_attribute(ERROR_TYPE, _TIMEOUT)
                span.set_status(Status(StatusCode.ERROR, "the wait timed out"))
        finally:
            span.end()

    # -- the current span -----------------------------------------------------------
    def _attach(self, span: Span, session_id: str | None = None) -> _Open:
        """Make ``span`` the current span (until ``_detach``), marked as this handler's.

        With ``session_id``, the context also carries ``session.id``, which OpenInference
        instrumentors (openai, ...) copy onto the LLM spans they open inside the step.
        """
        # One copy of the current context for the three keys (set_span_in_context would copy it again).
        values = {**otel_context.get_current(), _CURRENT_SPAN_KEY: span, self._span_key: span}
        if session_id is not None:
            values[_SESSION_KEY] = session_id
        context = otel_context.Context(values)
        return _Open(span, context, otel_context.attach(context))

    def _ambient_parent(self) -> otel_context.Context | None:
        """The parent of a span that nests under "the current span": the current context
        (``None``), unless the current span is another handler's step or user span, in
        which case this handler's own innermost span, so each handler's tree stays whole."""
        context = otel_context.get_current()
        mine = context.get(self._span_key)
        if not isinstance(mine, Span):
            return None
        current = trace.get_current_span(context)
        if current is mine or not any(v is current for k, v in context.items() if k in _SPAN_KEYS):
            return None  # ours, or a span the user (or a library) opened: nest under it
        return trace.set_span_in_context(mine)

    # -- user spans and events -----------------------------------------------------
    def _span_entered(self, event: SpanEntered, traced: _RunTrace | None) -> None:
        tracer = traced.tracer if traced is not None else self.tracer
        attributes: dict[str, Any] = dict(traced.common) if traced is not None else {}
        attributes[KIND] = event.kind or "CHAIN"
        name = event.name
        operation = semconv.operation_of(event.kind)
        if operation is not None:
            subject = event.gen_ai_name or event.name
            attributes.update(
                semconv.operation_attributes(
                    operation,
                    subject,
                    call_id=semconv.tool_call_id(event.arguments) if event.arguments else None,
                    session_id=event.run.session_id if event.run is not None else None,
                )
            )
            if self._latest_names:
                name = semconv.span_name(operation, subject)
        span = tracer.start_span(name, context=self._ambient_parent(), attributes=attributes)
        if event.arguments and span.is_recording():
            rendered = self.payloads.render(dict(event.arguments))
            span.set_attributes(_io(_INPUT, rendered))
            if operation == EXECUTE_TOOL and self.payloads.capture_content:
                span.set_attribute(semconv.TOOL_CALL_ARGUMENTS, rendered.text)
        opened = self._attach(span)
        opened.operation = operation
        (traced.user_spans if traced is not None else self._user_spans)[event.span_id] = opened

    def _span_exited(self, event: SpanExited, traced: _RunTrace | None) -> None:
        opened = None
        if traced is not None:
            opened = traced.user_spans.pop(event.span_id, None)
        if opened is None:
            opened = self._user_spans.pop(event.span_id, None)
        if opened is None:
            return
        span = opened.span
        try:
            if span.is_recording():
                if isinstance(event.error, asyncio.CancelledError):
                    # Cut off by the end of its run (or a cancel): not a failure of its own.
                    span.set_attribute("workflow.step.outcome", "cancelled")
                elif event.error is not None:
                    span.set_attribute(ERROR_TYPE, _error_type(event.error))
                    self._record_exception(span, event.error)
                    span.set_status(Status(StatusCode.ERROR, self.payloads.describe_exception(event.error, "failed")))
                else:
                    if event.result is not None:
                        output = self.payloads.render(event.result)
                        span.set_attributes(_io(_OUTPUT, output))
                        if opened.operation == EXECUTE_TOOL and self.payloads.capture_content:
                            span.set_attribute(semconv.TOOL_CALL_RESULT, output.text)
                    span.set_status(_OK)
            span.end()
        finally:
            _detach(opened)

    def _user_event(self, event: UserEvent, traced: _RunTrace | None) -> None:
        if event.step is not None and traced is not None:
            span = traced.parent_span_of(event.step, event.invocation_id)
        else:
            span = trace.get_current_span()
        if span.is_recording():
            span.add_event(event.name, self._event_attributes(event.attributes))

    def _event_attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """User event attributes as OTel attribute values, masked and redacted like any
        payload: scalars and lists of one scalar type as they are, the rest as JSON."""
        converted: dict[str, Any] = {}
        payloads = self.payloads
        for key, value in attributes.items():
            if value is None:
                continue
            data = payloads.prepare(value, key)
            if type(data) is str:  # prepare() masked it by key and redacted it: scrub and cap
                converted[key] = payloads.render_text(data, redact=False)
            elif type(data) is list and _is_attribute_value(data) and type(data[0]) is str:
                converted[key] = [payloads.render_text(v, redact=False) for v in data]
            elif _is_attribute_value(data):
                converted[key] = data
            else:
                converted[key] = payloads.cap(dumps(data), JSON).text
        return converted

    def _record_exception(self, span: Span, error: BaseException) -> None:
        """An ``exception`` span event whose message and stack are payloads: scrubbed
        for secrets and capped (``Span.record_exception`` would copy them whole)."""
        span.add_event("exception", self.payloads.exception_attributes(error))


# -- helpers ---------------------------------------------------------------------------
def _common_attributes(run: RunInfo) -> dict[str, Any]:
    """What every span of the run carries (Phoenix binds a trace to the session of the
    first span it stores, so the session id goes everywhere)."""
    return {
        "workflow.name": run.workflow_name,
        "workflow.run_id": run.run_id,
        "workflow.session_id": run.session_id,
        "session.id": run.session_id,
    }


class _StepShape(NamedTuple):
    """What every span of one step of a run shares."""

    name: str  # the span's name (under the GenAI opt-in, a tool or agent step's may differ)
    attributes: dict[str, Any]  # the run's identity, the step's kind and name: copied per span
    operation: str | None  # its GenAI operation (execute_tool, invoke_agent), if any


def _step_shape(traced: _RunTrace, run: RunInfo, step: str) -> _StepShape:
    kind = traced.kinds.get(step)
    attributes = {**traced.common, KIND: kind or "CHAIN", "workflow.step.name": step}
    operation = semconv.operation_of(kind) if kind is not None else None
    return _StepShape(f"{run.workflow_name}.{step}", attributes, operation)


class _EmitShape(NamedTuple):
    """What the emits of one event type, by one step (or from outside), from one source share."""

    name: str
    type_name: str
    attributes: dict[str, Any]  # copied per emit; a span event's leave out the run's identity
    requests_input: bool  # an InputRequiredEvent a step returned or sent: the run waits for an answer


def _emit_shape(traced: _RunTrace, event: EventEmitted, compact: bool) -> _EmitShape:
    type_name = type(event.event).__name__ if event.event is not None else "Event"
    # A span event leaves out the run's identity: the span that carries it has it.
    attributes: dict[str, Any] = {} if compact else dict(traced.common)
    attributes[KIND] = "CHAIN"
    attributes["workflow.event.type"] = type_name
    attributes["workflow.event.source"] = event.source
    if event.step is not None:
        attributes["workflow.step.name"] = event.step
    requests_input = isinstance(event.event, InputRequiredEvent) and event.step is not None and event.source != "stream"
    return _EmitShape(f"emit {type_name}", type_name, attributes, requests_input)


def _metadata(run: RunInfo) -> str:
    """The run span's OpenInference ``metadata``: the run's identity, as JSON."""
    metadata = {"workflow": run.workflow_name, "run_id": run.run_id, "session_id": run.session_id}
    if run.workflow_class:
        metadata["workflow_class"] = run.workflow_class
    return json.dumps(metadata)


class _IoKeys(NamedTuple):
    """The attribute names of one direction of a span's payload."""

    value: str
    mime_type: str
    truncated: str


_INPUT_VALUE, _INPUT_MIME_TYPE, _INPUT_TRUNCATED = "input.value", "input.mime_type", "workflow.input.truncated"
_OUTPUT_VALUE, _OUTPUT_MIME_TYPE, _OUTPUT_TRUNCATED = "output.value", "output.mime_type", "workflow.output.truncated"
_INPUT = _IoKeys(_INPUT_VALUE, _INPUT_MIME_TYPE, _INPUT_TRUNCATED)
_OUTPUT = _IoKeys(_OUTPUT_VALUE, _OUTPUT_MIME_TYPE, _OUTPUT_TRUNCATED)


def _io(keys: _IoKeys, rendered: Rendered, into: dict[str, Any] | None = None) -> dict[str, Any]:
    """``rendered`` as the payload attributes named by ``keys``, added to ``into`` (or a new dict)."""
    attributes: dict[str, Any] = {} if into is None else into
    attributes[keys.value] = rendered.text
    attributes[keys.mime_type] = rendered.mime_type
    if rendered.truncated:
        attributes[keys.truncated] = True
    return attributes


def _step_kinds(workflow: Any) -> Mapping[str, str]:
    """The OpenInference kind of each step of ``workflow`` marked with ``@step(kind=...)``."""
    steps = getattr(workflow, "_steps", None)
    if not isinstance(steps, dict):
        return _NO_KINDS
    kinds = {name: spec.config.kind for name, spec in steps.items() if getattr(spec.config, "kind", None)}
    return kinds or _NO_KINDS



def _error_type(error: BaseException | None, fallback: str = _TIMEOUT) -> str:
    """``error.type`` of a span that failed: the exception's class, else ``fallback``."""
    return semconv.exception_type(error) if error is not None else fallback


def _detach(opened: _Open) -> None:
    if opened.token is not None:
        otel_context.detach(opened.token)


def _end_leftovers(traced: _RunTrace, run_status: str) -> None:
    """End every span of the run still open when it finished (never leak a span).

    What was still running was interrupted by the end of the run: it is marked
    ``cancelled``, and as an error only when the run timed out (it is what ran too
    long). Tokens are not detached: they belong to tasks that are ending.
    """
    leftovers = [
        *((o, "workflow.step.outcome") for o in traced.user_spans.values()),
        *((o, "workflow.wait.outcome") for o in traced.waits.values()),
        *((o, "workflow.wait.outcome") for o in traced.input_waits),
        *((o, "workflow.step.outcome") for o in traced.backoffs.values()),
        *((o, "workflow.step.outcome") for o in traced.steps.values()),
    ]
    traced.user_spans.clear()
    traced.waits.clear()
    traced.input_waits.clear()
    traced.backoffs.clear()
    traced.steps.clear()
    first_error: Exception | None = None
    for opened, outcome_key in leftovers:
        try:
            opened.span.set_attribute(outcome_key, "cancelled")
            if run_status == "timed_out":
                opened.span.set_attribute(ERROR_TYPE, _TIMEOUT)
                opened.span.set_status(Status(StatusCode.ERROR, "interrupted: the run timed out"))
            opened.span.end()
        except Exception as exc:  # end the others anyway, then report
            first_error = first_error or exc
    if first_error is not None:
        raise first_error


def _is_attribute_value(value: Any) -> bool:
    """Whether OpenTelemetry takes ``value`` as is: a scalar or a list of one scalar type."""
    if isinstance(value, (str, bool, int, float)):
        return True
    if not isinstance(value, list) or not value:
        return False
    kind = type(value[0])
    return kind in (str, bool, int, float) and all(type(v) is kind for v in value)
