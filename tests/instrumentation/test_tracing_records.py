"""The OpenTelemetry handler fed synthetic record sequences (no runtime involved)."""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from instrumentation.tracing_support import Tracing
from workflows.events import Event, StartEvent, StopEvent
from workflows.instrumentation import (
    MISSING,
    Dispatcher,
    EventEmitted,
    OpenTelemetryHandler,
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
from workflows.instrumentation._scope import TRACER_NAME


class Question(Event):
    text: str


class Answer(Event):
    text: str


def new_run(run_id: str = "run-1", **kwargs: Any) -> RunInfo:
    return RunInfo(workflow_name="Flow", run_id=run_id, session_id="sess-1", **kwargs)


def run_quickstart_like(handler: OpenTelemetryHandler, run: RunInfo) -> None:
    """start -> StartEvent -> ask -> Question -> answer -> StopEvent, with one state edit."""
    start = StartEvent(topic="otel")
    assert handler.handle(RunStarted(run=run, start_event=start)) is not False
    handler.handle(EventEmitted(run=run, event=start, event_id="e1", source="start", step=None, invocation_id=None, targets=("ask",)))
    handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=1, worker=0, event=start, event_id="e1"))
    handler.handle(StateChanged(run=run, op="edit", path="", keys=("count",), before={"count": 0}, after={"count": 1}, step="ask", invocation_id=1))
    question = Question(text="why?")
    handler.handle(EventEmitted(run=run, event=question, event_id="e2", source="return", step="ask", invocation_id=1, targets=("answer",)))
    handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=1, outcome="completed", output=question))
    handler.handle(StepStarted(run=run, step="answer", invocation_id=2, attempt=1, worker=0, event=question, event_id="e2"))
    stop = StopEvent(result="because")
    handler.handle(EventEmitted(run=run, event=stop, event_id="e3", source="return", step="answer", invocation_id=2, targets=()))
    handler.handle(StepFinished(run=run, step="answer", invocation_id=2, attempt=1, outcome="completed", output=stop))
    handler.handle(RunFinished(run=run, status="completed", result="because", stop_event=stop))


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


# -- opting in and out --------------------------------------------------------------------
def test_run_is_not_followed_without_an_sdk() -> None:
    handler = OpenTelemetryHandler(metrics=False)  # the global provider: the API's proxy here
    assert handler.handle(RunStarted(run=new_run(), start_event=StartEvent())) is False


def test_run_is_not_followed_when_sampled_out() -> None:
    handler = OpenTelemetryHandler(tracer_provider=TracerProvider(sampler=ALWAYS_OFF), metrics=False)
    run = new_run()
    assert handler.handle(RunStarted(run=run, start_event=StartEvent())) is False
    assert handler not in run.scratch


def test_provider_installed_after_the_handler_was_built_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = OpenTelemetryHandler(metrics=False)
    assert handler.handle(RunStarted(run=new_run("before"), start_event=StartEvent())) is False
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    run = new_run("after")
    assert handler.handle(RunStarted(run=run, start_event=StartEvent())) is True
    handler.handle(RunFinished(run=run, status="completed"))
    assert [s.name for s in exporter.get_finished_spans()] == ["Flow.run"]


# -- structure ----------------------------------------------------------------------------
def test_spans_are_named_and_nested_as_the_contract_says(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run_quickstart_like(t.handler, new_run())
    run_span = t.one("Flow.run")
    ask, answer = t.one("Flow.ask"), t.one("Flow.answer")
    emit_start, emit_question, emit_stop = t.one("emit StartEvent"), t.one("emit Question"), t.one("emit StopEvent")
    state = t.one("state.edit")
    assert run_span.parent is None
    assert parent_of(ask) == parent_of(answer) == parent_of(emit_start) == run_span.context.span_id
    assert parent_of(state) == parent_of(emit_question) == ask.context.span_id
    assert parent_of(emit_stop) == answer.context.span_id
    assert len({s.context.trace_id for s in t.spans()}) == 1
    assert all(s.instrumentation_scope is not None and s.instrumentation_scope.name == TRACER_NAME for s in t.spans())


def test_step_span_links_to_the_emit_span_of_its_cause(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run_quickstart_like(t.handler, new_run())
    (ask_link,) = t.one("Flow.ask").links
    (answer_link,) = t.one("Flow.answer").links
    assert ask_link.context.span_id == t.one("emit StartEvent").context.span_id
    assert answer_link.context.span_id == t.one("emit Question").context.span_id


def test_every_span_carries_the_run_identity_and_session(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run_quickstart_like(t.handler, new_run())
    for span in t.spans():
        attributes = span.attributes or {}
        assert attributes["workflow.name"] == "Flow", span.name
        assert attributes["workflow.run_id"] == "run-1", span.name
        assert attributes["workflow.session_id"] == attributes["session.id"] == "sess-1", span.name
        assert attributes["openinference.span.kind"] == "CHAIN", span.name
    metadata = json.loads(t.one("Flow.run").attributes["metadata"])  # type: ignore[index,arg-type]
    assert metadata["run_id"] == "run-1" and metadata["session_id"] == "sess-1"


def test_run_and_step_inputs_and_outputs(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run_quickstart_like(t.handler, new_run())
    run_attrs = t.one("Flow.run").attributes or {}
    assert json.loads(run_attrs["input.value"]) == {"topic": "otel"}  # type: ignore[arg-type]
    assert run_attrs["input.mime_type"] == "application/json"
    assert run_attrs["output.value"] == "because" and run_attrs["output.mime_type"] == "text/plain"
    assert run_attrs["workflow.run.status"] == "completed"
    assert run_attrs["workflow.resumed"] is False
    ask = t.one("Flow.ask").attributes or {}
    assert json.loads(ask["input.value"]) == {"topic": "otel"}  # type: ignore[arg-type]
    assert json.loads(ask["output.value"]) == {"text": "why?"}  # type: ignore[arg-type]
    assert ask["workflow.step.name"] == "ask" and ask["workflow.step.attempt"] == 1
    assert ask["workflow.step.worker"] == 0 and ask["workflow.event.type"] == "StartEvent"
    assert ask["workflow.step.outcome"] == "completed"
    assert t.one("Flow.ask").status.status_code == StatusCode.OK
    assert t.one("Flow.run").status.status_code == StatusCode.OK


def test_emit_span_describes_the_event(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run_quickstart_like(t.handler, new_run())
    attrs = t.one("emit Question").attributes or {}
    assert attrs["workflow.event.type"] == "Question"
    assert attrs["workflow.event.id"] == "e2"
    assert attrs["workflow.event.source"] == "return"
    assert tuple(attrs["workflow.event.targets"]) == ("answer",)  # type: ignore[arg-type]
    assert attrs["workflow.step.name"] == "ask"
    assert json.loads(attrs["input.value"]) == {"text": "why?"}  # type: ignore[arg-type]
    assert (t.one("emit StartEvent").attributes or {})["workflow.event.source"] == "start"


def test_state_span_carries_keys_and_json_patch(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run_quickstart_like(t.handler, new_run())
    attrs = t.one("state.edit").attributes or {}
    assert tuple(attrs["workflow.state.keys"]) == ("count",)  # type: ignore[arg-type]
    assert json.loads(attrs["workflow.state.diff"]) == [{"op": "replace", "path": "/count", "value": 1}]  # type: ignore[arg-type]
    assert attrs["workflow.step.name"] == "ask"


def test_state_change_outside_a_step_is_under_the_run(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(StateChanged(run=run, op="set", path="/k", keys=("k",), before=MISSING, after=1))
    t.handler.handle(RunFinished(run=run, status="completed"))
    assert parent_of(t.one("state.set")) == t.one("Flow.run").context.span_id
    assert json.loads((t.one("state.set").attributes or {})["workflow.state.diff"]) == [  # type: ignore[arg-type]
        {"op": "add", "path": "/k", "value": 1}
    ]


def test_agent_workflow_run_is_an_agent_span(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run(is_agent=True)
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(RunFinished(run=run, status="completed"))
    attrs = t.one("Flow.run").attributes or {}
    assert attrs["openinference.span.kind"] == "AGENT" and attrs["agent.name"] == "Flow"


def test_run_span_is_a_child_of_the_callers_span(detached_tracing: Tracing) -> None:
    t = detached_tracing
    tracer = t.provider.get_tracer("caller")
    with tracer.start_as_current_span("request") as request:
        run = new_run()
        t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(RunFinished(run=run, status="completed"))
    assert parent_of(t.one("Flow.run")) == request.get_span_context().span_id


# -- the current span ---------------------------------------------------------------------
def test_step_span_is_current_while_the_step_runs_and_restored_after(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    before = trace.get_current_span()
    t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id=None))
    inside = trace.get_current_span()
    with t.provider.get_tracer("user").start_as_current_span("my own work"):
        pass
    t.handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=1, outcome="completed", output=None))
    assert trace.get_current_span() is before
    t.handler.handle(RunFinished(run=run, status="completed"))
    step = t.one("Flow.ask")
    assert inside.get_span_context().span_id == step.context.span_id
    assert parent_of(t.one("my own work")) == step.context.span_id


def test_user_spans_nest_under_the_step_and_record_results(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id=None))
    t.handler.handle(SpanEntered(run=run, span_id=7, name="lookup", arguments={"query": "q", "api_key": "k"}))
    t.handler.handle(UserEvent(run=run, name="cache", attributes={"hit": True, "detail": {"size": 3}, "token": "t"}))
    t.handler.handle(SpanExited(run=run, span_id=7, name="lookup", result={"rows": 2}, error=None))
    t.handler.handle(SpanEntered(run=run, span_id=8, name="broken", arguments=None))
    t.handler.handle(SpanExited(run=run, span_id=8, name="broken", result=None, error=KeyError("missing")))
    t.handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=1, outcome="completed", output=None))
    t.handler.handle(RunFinished(run=run, status="completed"))
    step, lookup, broken = t.one("Flow.ask"), t.one("lookup"), t.one("broken")
    assert parent_of(lookup) == parent_of(broken) == step.context.span_id
    attrs = lookup.attributes or {}
    assert json.loads(attrs["input.value"]) == {"query": "q", "api_key": "***"}  # type: ignore[arg-type]
    assert json.loads(attrs["output.value"]) == {"rows": 2}  # type: ignore[arg-type]
    assert attrs["workflow.run_id"] == "run-1"
    (event,) = lookup.events
    assert event.name == "cache"
    assert dict(event.attributes or {}) == {"hit": True, "detail": '{"size":3}', "token": "***"}
    assert broken.status.status_code == StatusCode.ERROR
    assert broken.events[0].name == "exception"


def test_user_span_outside_any_run_still_records(detached_tracing: Tracing) -> None:
    t = detached_tracing
    t.handler.handle(SpanEntered(run=None, span_id=9, name="standalone", arguments={}))
    t.handler.handle(SpanExited(run=None, span_id=9, name="standalone", result=1, error=None))
    span = t.one("standalone")
    assert span.parent is None and "workflow.run_id" not in (span.attributes or {})


# -- errors and outcomes ------------------------------------------------------------------
def test_failed_step_has_error_status_and_exception_event(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id=None))
    t.handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=1, outcome="failed", output=None, error=ValueError("bad input")))
    error = ValueError("bad input")
    t.handler.handle(RunFinished(run=run, status="failed", error=error))
    step, run_span = t.one("Flow.ask"), t.one("Flow.run")
    assert step.status.status_code == StatusCode.ERROR
    assert step.status.description == "ValueError: bad input"
    (exception,) = step.events
    assert exception.name == "exception"
    assert (exception.attributes or {})["exception.type"] == "ValueError"
    assert run_span.status.status_code == StatusCode.ERROR
    assert (run_span.attributes or {})["workflow.run.status"] == "failed"
    assert [e.name for e in run_span.events] == ["exception"]


def test_each_retry_attempt_is_its_own_step_span(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    for attempt in (1, 2):
        t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=attempt, worker=0, event=StartEvent(), event_id=None))
        t.handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=attempt, outcome="retrying", output=None, error=TimeoutError("slow"), retry_delay=0.5))
    t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=3, worker=0, event=StartEvent(), event_id=None))
    t.handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=3, outcome="completed", output=None))
    t.handler.handle(RunFinished(run=run, status="completed"))
    attempts = sorted(t.named("Flow.ask"), key=lambda s: cast(int, (s.attributes or {})["workflow.step.attempt"]))
    assert [s.attributes["workflow.step.attempt"] for s in attempts] == [1, 2, 3]  # type: ignore[index]
    # a retried attempt is not an error (the run recovers), but keeps its exception event
    assert [s.status.status_code for s in attempts] == [StatusCode.UNSET, StatusCode.UNSET, StatusCode.OK]
    assert [e.name for e in attempts[0].events] == ["exception"]
    assert attempts[0].attributes["workflow.step.retry_delay"] == 0.5  # type: ignore[index]
    assert attempts[0].attributes["workflow.step.outcome"] == "retrying"  # type: ignore[index]
    # each back-off is a span of its own, from the failed attempt to the next one
    backoffs = sorted(t.named("backoff ask"), key=lambda s: cast(int, s.start_time))
    assert [(s.attributes or {})["workflow.backoff.attempt"] for s in backoffs] == [2, 3]
    for backoff, failed, following in zip(backoffs, attempts, attempts[1:]):
        assert cast(int, failed.end_time) <= cast(int, backoff.start_time)
        assert cast(int, backoff.end_time) <= cast(int, following.start_time)
        assert backoff.parent is not None and backoff.parent.span_id == t.one("Flow.run").context.span_id
    assert t.leaked() == []


@pytest.mark.parametrize(
    ("status", "code"),
    [("failed", StatusCode.ERROR), ("timed_out", StatusCode.ERROR), ("cancelled", StatusCode.UNSET)],
)
def test_run_end_ends_every_open_span(detached_tracing: Tracing, status: str, code: StatusCode) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id=None))
    t.handler.handle(WaitStarted(run=run, step="ask", invocation_id=1, waiter_id="w1", event_type=Answer, requirements={"id": 3}, timeout=10.0))
    t.handler.handle(SpanEntered(run=run, span_id=11, name="inner", arguments=None))
    t.handler.handle(StepStarted(run=run, step="other", invocation_id=2, attempt=1, worker=1, event=StartEvent(), event_id=None))
    t.handler.handle(RunFinished(run=run, status=status, error=None if status == "cancelled" else RuntimeError("x")))  # type: ignore[arg-type]
    names = sorted(s.name for s in t.spans())
    assert names == ["Flow.ask", "Flow.other", "Flow.run", "inner", "wait Answer"]
    run_span = t.one("Flow.run")
    assert run_span.status.status_code == code
    assert (run_span.attributes or {})["workflow.run.status"] == status
    for name in ("Flow.ask", "Flow.other", "inner"):
        assert (t.one(name).attributes or {})["workflow.step.outcome"] == "cancelled"
    assert (t.one("wait Answer").attributes or {})["workflow.wait.outcome"] == "cancelled"
    expected_leftover = StatusCode.ERROR if status == "timed_out" else StatusCode.UNSET
    assert t.one("Flow.other").status.status_code == expected_leftover
    assert handler_state_is_gone(t.handler, run)


def handler_state_is_gone(handler: OpenTelemetryHandler, run: RunInfo) -> bool:
    return handler not in run.scratch


def test_wait_span_covers_the_wait_under_its_step(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id=None))
    t.handler.handle(WaitStarted(run=run, step="ask", invocation_id=1, waiter_id="w1", event_type=Answer, requirements={"id": 3}, timeout=10.0))
    t.handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=1, outcome="waiting"))
    t.handler.handle(WaitEnded(run=run, step="ask", waiter_id="w1", outcome="received", event=Answer(text="yes")))
    t.handler.handle(RunFinished(run=run, status="completed"))
    wait, step = t.one("wait Answer"), t.one("Flow.ask")
    assert parent_of(wait) == step.context.span_id
    attrs = wait.attributes or {}
    assert attrs["workflow.event.type"] == "Answer" and attrs["workflow.wait.id"] == "w1"
    assert attrs["workflow.wait.timeout"] == 10.0 and attrs["workflow.wait.outcome"] == "received"
    assert json.loads(attrs["input.value"]) == {"id": 3}  # type: ignore[arg-type]
    assert json.loads(attrs["output.value"]) == {"text": "yes"}  # type: ignore[arg-type]
    assert (step.attributes or {})["workflow.step.outcome"] == "waiting"


def test_timed_out_wait_is_an_error(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=StartEvent()))
    t.handler.handle(WaitStarted(run=run, step="ask", invocation_id=1, waiter_id="w1", event_type=Answer, requirements=None, timeout=1.0))
    t.handler.handle(WaitEnded(run=run, step="ask", waiter_id="w1", outcome="timed_out", event=None))
    t.handler.handle(RunFinished(run=run, status="completed"))
    assert t.one("wait Answer").status.status_code == StatusCode.ERROR


def test_records_of_runs_it_does_not_follow_are_ignored(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()  # RunStarted never seen
    t.handler.handle(StepStarted(run=run, step="ask", invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id=None))
    t.handler.handle(EventEmitted(run=run, event=StartEvent(), event_id="e1", source="start"))
    t.handler.handle(StepFinished(run=run, step="ask", invocation_id=1, attempt=1, outcome="completed"))
    t.handler.handle(RunFinished(run=run, status="completed"))
    assert t.spans() == []


# -- payload options on spans -------------------------------------------------------------
def test_truncated_payload_is_flagged_on_the_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = OpenTelemetryHandler(tracer_provider=provider, max_payload_bytes=100, metrics=False)
    run = new_run()
    handler.handle(RunStarted(run=run, start_event=StartEvent(text="x" * 500)))
    handler.handle(RunFinished(run=run, status="completed", result="short"))
    (span,) = exporter.get_finished_spans()
    attrs = span.attributes or {}
    assert attrs["workflow.input.truncated"] is True
    assert len(str(attrs["input.value"]).encode()) <= 100
    assert "workflow.output.truncated" not in attrs


def test_capture_off_keeps_types_ids_and_sizes() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = OpenTelemetryHandler(tracer_provider=provider, capture_content=False, metrics=False)
    run_quickstart_like(handler, new_run())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    everything = json.dumps([dict(s.attributes or {}) for s in spans.values()], default=list)
    assert "why?" not in everything and "because" not in everything and "otel" not in everything
    emit = spans["emit Question"].attributes or {}
    assert emit["workflow.event.id"] == "e2" and emit["workflow.event.type"] == "Question"
    assert json.loads(emit["input.value"]) == {"type": "Question", "bytes": len('{"text":"why?"}')}  # type: ignore[arg-type]
    diff = json.loads((spans["state.edit"].attributes or {})["workflow.state.diff"])  # type: ignore[arg-type]
    assert diff == [{"op": "replace", "path": "/count"}]


# -- resume -------------------------------------------------------------------------------
def test_resumed_run_continues_the_saved_trace(detached_tracing: Tracing) -> None:
    t = detached_tracing
    first = new_run("run-1")
    t.handler.handle(RunStarted(run=first, start_event=StartEvent()))
    carrier: dict[str, str] = {}
    t.handler.inject(first, carrier)
    t.handler.handle(RunFinished(run=first, status="cancelled"))
    assert carrier["traceparent"].startswith("00-")

    with t.provider.get_tracer("caller").start_as_current_span("resume request") as caller:
        second = new_run("run-2")
        assert t.handler.handle(RunStarted(run=second, start_event=None, resumed=True, carrier=carrier)) is True
    t.handler.handle(RunFinished(run=second, status="completed", result="done"))
    runs = {(s.attributes or {})["workflow.run_id"]: s for s in t.named("Flow.run")}
    original, resumed = runs["run-1"], runs["run-2"]
    assert resumed.context.trace_id == original.context.trace_id
    assert parent_of(resumed) == original.context.span_id
    assert (resumed.attributes or {})["workflow.resumed"] is True
    assert "input.value" not in (resumed.attributes or {})
    (link,) = resumed.links
    assert link.context.span_id == caller.get_span_context().span_id


def test_inject_adds_nothing_for_a_run_it_does_not_trace(detached_tracing: Tracing) -> None:
    carrier: dict[str, str] = {}
    detached_tracing.handler.inject(new_run(), carrier)
    assert carrier == {}


def test_resume_without_a_carrier_starts_under_the_caller(detached_tracing: Tracing) -> None:
    t = detached_tracing
    run = new_run()
    t.handler.handle(RunStarted(run=run, start_event=None, resumed=True, carrier={}))
    t.handler.handle(RunFinished(run=run, status="completed"))
    assert t.one("Flow.run").parent is None
    assert (t.one("Flow.run").attributes or {})["workflow.resumed"] is True


# -- a failing span processor -------------------------------------------------------------
class ExplodingProcessor(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        if span.name.startswith("Flow.a"):
            raise RuntimeError("processor bug")


def test_failing_processor_is_counted_once_logged_and_spans_still_end(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(ExplodingProcessor())
    handler = OpenTelemetryHandler(tracer_provider=provider, metrics=False)
    dispatcher = Dispatcher("isolated")
    dispatcher.add_handler(handler)
    run = new_run()
    handlers = dispatcher.start_run(RunStarted(run=run, start_event=StartEvent()))
    before = trace.get_current_span()
    for step in ("a1", "a2", "b"):
        dispatcher.publish(StepStarted(run=run, step=step, invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id=None), handlers)
        dispatcher.publish(StepFinished(run=run, step=step, invocation_id=1, attempt=1, outcome="completed"), handlers)
    # the step spans were detached although ending them raised
    assert trace.get_current_span() is before
    dispatcher.publish(StepStarted(run=run, step="a3", invocation_id=2, attempt=1, worker=0, event=StartEvent(), event_id=None), handlers)
    dispatcher.publish(StepStarted(run=run, step="c", invocation_id=3, attempt=1, worker=0, event=StartEvent(), event_id=None), handlers)
    dispatcher.publish(RunFinished(run=run, status="cancelled"), handlers)
    # a leftover whose end raised did not keep the others or the run span from ending
    assert {s.name for s in exporter.get_finished_spans()} == {"Flow.a1", "Flow.a2", "Flow.a3", "Flow.b", "Flow.c", "Flow.run"}
    assert dispatcher.handler_errors == {"OpenTelemetryHandler": 3}
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and "OpenTelemetryHandler" in r.getMessage()]
    assert len(logged) == 1
