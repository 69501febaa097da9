"""Traces a person can read at a glance: compact detail, waits for a human, back-offs,
recovered runs, step kinds, and exception messages treated as payloads.

Real workflows on a real in-memory OpenTelemetry SDK (see ``conftest.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest
from instrumentation.tracing_support import Tracing, make_tracing
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from workflows import Context, Workflow, catch_error, step
from workflows.errors import WorkflowCancelledByUser, WorkflowValidationError
from workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
)
from workflows.instrumentation import OpenTelemetryHandler, get_dispatcher
from workflows.instrumentation.settings import TRACE_DETAIL_VAR
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed

SECRET = "sk-proj-0123456789abcdefABCDEF"


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.fixture
def compact(isolated_root: None) -> Iterator[Tracing]:
    """Like ``tracing``, with ``detail="steps"``."""
    setup = make_tracing(detail="steps")
    get_dispatcher().add_handler(setup.handler)
    yield setup
    get_dispatcher().remove_handler(setup.handler)
    setup.provider.shutdown()
    setup.meter_provider.shutdown()


class Found(Event):
    hits: int


class Research(Workflow):
    @step
    async def search(self, ctx: Context, ev: StartEvent) -> Found:
        await ctx.store.set("query", ev.topic)
        return Found(hits=3)

    @step
    async def summarize(self, ctx: Context, ev: Found) -> StopEvent:
        await ctx.store.set("hits", ev.hits)
        return StopEvent(result=f"{ev.hits} hits")


# -- detail ---------------------------------------------------------------------------------
async def test_steps_detail_keeps_run_and_step_spans_and_turns_the_rest_into_span_events(compact: Tracing) -> None:
    assert await Research().run(topic="otel") == "3 hits"
    assert sorted(s.name for s in compact.spans()) == ["Research.run", "Research.search", "Research.summarize"]
    run, search, summarize = compact.one("Research.run"), compact.one("Research.search"), compact.one("Research.summarize")
    assert [e.name for e in run.events] == ["emit StartEvent"]
    assert [e.name for e in search.events] == ["state.set", "emit Found"]
    assert [e.name for e in summarize.events] == ["state.set", "emit StopEvent"]
    emit = dict(search.events[1].attributes or {})
    # the attributes an emit span would have had, minus the run's identity its parent carries
    assert emit["workflow.event.type"] == "Found" and emit["workflow.event.source"] == "return"
    assert list(emit["workflow.event.targets"]) == ["summarize"]
    assert json.loads(emit["input.value"]) == {"hits": 3}
    assert "workflow.run_id" not in emit
    state = dict(search.events[0].attributes or {})
    assert json.loads(state["workflow.state.diff"]) == [{"op": "add", "path": "/query", "value": "otel"}]
    # the step still links to what caused it: the span its triggering event was recorded on
    (link,) = summarize.links
    assert link.context.span_id == search.context.span_id
    assert compact.leaked() == []


async def test_full_detail_is_the_default(tracing: Tracing) -> None:
    assert tracing.handler.detail == "full"
    await Research().run(topic="otel")
    assert {"emit StartEvent", "emit Found", "state.set"} <= {s.name for s in tracing.spans()}


def test_detail_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(TRACE_DETAIL_VAR, "steps")
    assert OpenTelemetryHandler(metrics=False, log_correlation=False).detail == "steps"
    assert OpenTelemetryHandler(detail="full", metrics=False, log_correlation=False).detail == "full"
    monkeypatch.setenv(TRACE_DETAIL_VAR, "compact")
    with caplog.at_level(logging.WARNING, logger="workflows.instrumentation"):
        assert OpenTelemetryHandler(metrics=False, log_correlation=False).detail == "full"
    assert TRACE_DETAIL_VAR in caplog.text and "full or steps" in caplog.text


def test_a_bad_detail_argument_is_refused_with_the_accepted_values() -> None:
    with pytest.raises(ValueError, match="'full'.*'steps'"):
        OpenTelemetryHandler(detail="everything", metrics=False, log_correlation=False)  # type: ignore[arg-type]


# -- waiting for a human --------------------------------------------------------------------
class Approve(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="ship it?")

    @step
    async def decide(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)


async def answer_when_asked(workflow: Workflow, reply: str) -> Any:
    handler = workflow.run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response=reply))
    return await handler


@pytest.mark.parametrize("detail", ["full", "steps"])
async def test_a_returned_input_required_event_opens_a_wait_span_until_the_answer(
    isolated_root: None, detail: str
) -> None:
    t = make_tracing(detail=detail)
    get_dispatcher().add_handler(t.handler)
    try:
        assert await answer_when_asked(Approve(timeout=5), "yes") == "yes"
    finally:
        get_dispatcher().remove_handler(t.handler)
    run, ask, decide, wait = (t.one(n) for n in ("Approve.run", "Approve.ask", "Approve.decide", "wait HumanResponseEvent"))
    assert parent_id(wait) == run.context.span_id
    assert attrs(wait)["workflow.step.name"] == "ask"
    assert attrs(wait)["workflow.wait.outcome"] == "received"
    assert attrs(wait)["workflow.wait.request"] == "InputRequiredEvent"
    assert json.loads(attrs(wait)["input.value"]) == {"prefix": "ship it?"}
    assert json.loads(attrs(wait)["output.value"]) == {"response": "yes"}
    assert wait.status.status_code == StatusCode.OK
    # the wait covers the time between the question and the answer
    assert cast(int, ask.start_time) <= cast(int, wait.start_time) <= cast(int, decide.start_time)
    assert cast(int, wait.end_time) <= cast(int, decide.start_time)
    assert t.leaked() == []
    t.provider.shutdown()
    t.meter_provider.shutdown()


async def test_an_unanswered_request_ends_its_wait_with_the_run(tracing: Tracing) -> None:
    handler = Approve(timeout=5).run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            await handler.cancel_run()
            break
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    wait = tracing.one("wait HumanResponseEvent")
    assert attrs(wait)["workflow.wait.outcome"] == "cancelled"
    assert tracing.leaked() == []


# -- retries and recoveries -----------------------------------------------------------------
class Recovering(Workflow):
    calls = 0

    @step(retry_policy=retry_policy(wait=wait_fixed(0.05), stop=stop_after_attempt(2)))
    async def fetch(self, ev: StartEvent) -> StopEvent:
        Recovering.calls += 1
        if Recovering.calls == 1:
            raise ConnectionError(f"upstream refused key {SECRET}")
        return StopEvent(result="ok")


async def test_a_recovered_run_has_no_error_span_but_keeps_the_failed_attempt_and_its_back_off(
    tracing: Tracing,
) -> None:
    Recovering.calls = 0
    assert await Recovering().run() == "ok"
    assert [s.name for s in tracing.spans() if s.status.status_code == StatusCode.ERROR] == []
    first, second = sorted(tracing.named("Recovering.fetch"), key=lambda s: attrs(s)["workflow.step.attempt"])
    assert attrs(first)["workflow.step.outcome"] == "retrying"
    (exception,) = first.events
    assert exception.name == "exception"
    assert dict(exception.attributes or {})["exception.type"] == "ConnectionError"
    backoff = tracing.one("backoff fetch")
    assert attrs(backoff)["workflow.step.retry_delay"] == pytest.approx(0.05)
    assert cast(int, first.end_time) <= cast(int, backoff.start_time)
    assert cast(int, backoff.end_time) <= cast(int, second.start_time)
    # the back-off is time in the trace: about the policy's delay (a lower bound only)
    assert cast(int, backoff.end_time) - cast(int, backoff.start_time) >= 40_000_000


# -- step kinds -----------------------------------------------------------------------------
class Tools(Workflow):
    @step(kind="RETRIEVER")
    async def retrieve(self, ev: StartEvent) -> Found:
        return Found(hits=1)

    @step(kind="tool")
    async def call_tool(self, ev: Found) -> StopEvent:
        return StopEvent(result="done")


async def test_a_step_says_what_kind_of_work_it_is(tracing: Tracing) -> None:
    await Tools().run()
    assert attrs(tracing.one("Tools.retrieve"))["openinference.span.kind"] == "RETRIEVER"
    assert attrs(tracing.one("Tools.call_tool"))["openinference.span.kind"] == "TOOL"
    assert attrs(tracing.one("Tools.run"))["openinference.span.kind"] == "CHAIN"
    assert attrs(tracing.one("emit Found"))["openinference.span.kind"] == "CHAIN"


def test_a_step_kind_must_be_an_openinference_kind() -> None:
    with pytest.raises(WorkflowValidationError, match="TOOL.*RETRIEVER|kind='TOOL'"):

        class Wrong(Workflow):
            @step(kind="WRENCH")  # type: ignore[arg-type]
            async def s(self, ev: StartEvent) -> StopEvent:
                return StopEvent()


def test_the_step_kinds_are_openinference_s() -> None:
    from openinference.semconv.trace import OpenInferenceSpanKindValues

    from workflows.decorators import SPAN_KINDS

    assert set(SPAN_KINDS) == {k.value for k in OpenInferenceSpanKindValues}


# -- exceptions are payloads ----------------------------------------------------------------
class Leaky(Workflow):
    @step
    async def call(self, ev: StartEvent) -> StopEvent:
        raise RuntimeError(f"401 for api_key={SECRET}: " + "x" * 5_000_000)

    @catch_error
    async def recover(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(result=len(str(ev.exception)))


async def test_exception_messages_are_masked_and_capped_on_spans_events_and_the_failure_event(
    isolated_root: None,
) -> None:
    t = make_tracing(max_payload_bytes=2048)
    get_dispatcher().add_handler(t.handler)
    try:
        # the workflow itself still sees the whole exception
        assert await Leaky().run() > 5_000_000
    finally:
        get_dispatcher().remove_handler(t.handler)
    failed = t.one("Leaky.call")
    texts: list[str] = [failed.status.description or ""]
    (exception,) = failed.events
    event_attrs = dict(exception.attributes or {})
    texts += [event_attrs["exception.message"], event_attrs["exception.stacktrace"]]
    texts.append(attrs(t.one("emit StepFailedEvent"))["input.value"])
    texts.append(attrs(t.one("Leaky.recover"))["input.value"])
    for text in texts:
        assert SECRET not in text
        assert len(text.encode()) <= 2048
    assert "api_key=***" in event_attrs["exception.message"]
    assert "[truncated:" in event_attrs["exception.message"]
    assert "api_key=***" in texts[-1]
    t.provider.shutdown()
    t.meter_provider.shutdown()


async def test_run_errors_are_masked_too(tracing: Tracing) -> None:
    class Fails(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            raise ValueError(f"Authorization: Bearer {SECRET}")

    with pytest.raises(ValueError):
        await Fails().run()
    run = tracing.one("Fails.run")
    assert SECRET not in (run.status.description or "")
    assert SECRET not in dict(run.events[0].attributes or {})["exception.message"]
    assert "Bearer ***" in (run.status.description or "")


async def test_wait_ids_and_user_event_strings_are_masked_and_capped(isolated_root: None) -> None:
    from workflows.instrumentation import get_dispatcher as dispatcher_of

    t = make_tracing(max_payload_bytes=256)
    get_dispatcher().add_handler(t.handler)

    class Waits(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent | HumanResponseEvent) -> StopEvent:
            dispatcher_of().event(
                "called", note=f"token={SECRET}", long="y" * 10_000, tags=[f"password: {SECRET}", "ok"]
            )
            reply = await ctx.wait_for_event(
                HumanResponseEvent, waiter_id=f"ask-{SECRET}", waiter_event=InputRequiredEvent(prefix="?")
            )
            return StopEvent(result=reply.response)

    try:
        assert await answer_when_asked(Waits(timeout=5), "fine") == "fine"
    finally:
        get_dispatcher().remove_handler(t.handler)
    wait = t.one("wait HumanResponseEvent")
    assert SECRET not in attrs(wait)["workflow.wait.id"]
    (called, *_) = [e for s in t.named("Waits.s") for e in s.events if e.name == "called"]
    values = dict(called.attributes or {})
    assert values["note"] == "token=***"
    assert len(values["long"].encode()) <= 256 and "[truncated:" in values["long"]
    assert list(values["tags"]) == ["password: ***", "ok"]
    t.provider.shutdown()
    t.meter_provider.shutdown()


async def test_headers_given_as_pairs_are_masked(tracing: Tracing) -> None:
    class Calls(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="ok")

    await Calls().run(headers=[("Authorization", f"Bearer {SECRET}"), ["X-Api-Key", SECRET], ("Accept", "json")])
    started = json.loads(attrs(tracing.one("Calls.run"))["input.value"])
    assert started["headers"] == [["Authorization", "***"], ["X-Api-Key", "***"], ["Accept", "json"]]
