"""Real workflows traced end to end through the real OpenTelemetry SDK (in memory)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult, SimpleSpanProcessor
from opentelemetry.trace import StatusCode
from pydantic import BaseModel, Field

from instrumentation.tracing_support import Tracing, make_tracing
from workflows import Context, Workflow, step
from workflows.errors import WorkflowCancelledByUser, WorkflowTimeoutError
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.instrumentation import InstrumentationEvent, get_dispatcher
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_none


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def runs_by_id(tracing: Tracing, name: str) -> dict[str, ReadableSpan]:
    return {attrs(s)["workflow.run_id"]: s for s in tracing.named(name)}


# -- the quickstart -----------------------------------------------------------------------
class MyEvent(Event):
    msg: list[str]


class RunState(BaseModel):
    num_runs: int = Field(default=0)


class MyWorkflow(Workflow):
    @step
    async def start(self, ctx: Context[RunState], ev: StartEvent) -> MyEvent:
        async with ctx.store.edit_state() as state:
            state.num_runs += 1
            return MyEvent(msg=[ev.input_msg] * state.num_runs)

    @step
    async def process(self, ctx: Context[RunState], ev: MyEvent) -> StopEvent:
        data_length = len("".join(ev.msg))
        return StopEvent(result=f"Processed {len(ev.msg)} times, data length: {data_length}")


async def test_quickstart_runs_share_a_session_and_trace_their_state(tracing: Tracing) -> None:
    workflow = MyWorkflow()
    ctx: Context[RunState] = Context(workflow)
    first = workflow.run(input_msg="Hello, world!", ctx=ctx)
    await first
    second = workflow.run(input_msg="Hello, world!", ctx=ctx)
    assert await second == "Processed 2 times, data length: 26"

    runs = runs_by_id(tracing, "MyWorkflow.run")
    run1, run2 = runs[first.run_id], runs[second.run_id]
    assert run1.context.trace_id != run2.context.trace_id  # one trace per run...
    assert attrs(run1)["session.id"] == attrs(run2)["session.id"] == ctx.session_id  # ...one session
    assert {attrs(s)["session.id"] for s in tracing.spans()} == {ctx.session_id}
    assert attrs(run2)["output.value"] == "Processed 2 times, data length: 26"
    assert json.loads(attrs(run2)["input.value"]) == {"input_msg": "Hello, world!"}

    for run_span, expected in ((run1, 1), (run2, 2)):
        trace_spans = [s for s in tracing.spans() if s.context.trace_id == run_span.context.trace_id]
        by_name = {s.name: s for s in trace_spans}
        assert set(by_name) == {
            "MyWorkflow.run", "MyWorkflow.start", "MyWorkflow.process",
            "emit StartEvent", "emit MyEvent", "emit StopEvent", "state.edit",
        }  # fmt: skip
        start, process = by_name["MyWorkflow.start"], by_name["MyWorkflow.process"]
        assert parent_id(start) == parent_id(process) == parent_id(by_name["emit StartEvent"]) == run_span.context.span_id
        assert parent_id(by_name["state.edit"]) == parent_id(by_name["emit MyEvent"]) == start.context.span_id
        assert parent_id(by_name["emit StopEvent"]) == process.context.span_id
        assert json.loads(attrs(by_name["state.edit"])["workflow.state.diff"]) == [
            {"op": "replace", "path": "/num_runs", "value": expected}
        ]
        assert tuple(attrs(by_name["emit MyEvent"])["workflow.event.targets"]) == ("process",)
        assert [link.context.span_id for link in process.links] == [by_name["emit MyEvent"].context.span_id]
        assert [link.context.span_id for link in start.links] == [by_name["emit StartEvent"].context.span_id]
    assert tracing.leaked() == []


# -- concurrency --------------------------------------------------------------------------
class Hop(Event):
    n: int


class Chain(Workflow):
    @step
    async def first(self, ev: StartEvent) -> Hop:
        await asyncio.sleep(0)
        return Hop(n=ev.n)

    @step
    async def second(self, ev: Hop) -> StopEvent:
        await asyncio.sleep(0)
        with trace.get_tracer("user").start_as_current_span("user work") as span:
            span.set_attribute("n", ev.n)
            await asyncio.sleep(0)
        return StopEvent(result=ev.n)


async def test_hundreds_of_concurrent_runs_never_mix_spans(tracing: Tracing) -> None:
    tracing_provider_tracer = tracing.provider.get_tracer("user")
    workflow = Chain()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trace, "get_tracer", lambda *a, **k: tracing_provider_tracer)
        handlers = [workflow.run(n=i) for i in range(300)]
        results = await asyncio.gather(*handlers)
    assert results == list(range(300))
    spans = tracing.spans()
    by_id = {s.context.span_id: s for s in spans}
    runs = runs_by_id(tracing, "Chain.run")
    assert len(runs) == 300
    for span in spans:
        root = span
        while root.parent is not None:
            root = by_id[root.parent.span_id]
        assert root.name == "Chain.run"
        assert span.context.trace_id == root.context.trace_id
        if span.name == "user work":
            # the user's span sits in the run whose number it worked on
            assert json.loads(attrs(root)["output.value"]) == attrs(span)["n"]
        else:
            assert attrs(span)["workflow.run_id"] == attrs(root)["workflow.run_id"]
    assert len(spans) == 300 * 7  # run, 2 steps, 3 emits, 1 user span
    assert tracing.leaked() == []


class Item(Event):
    i: int


class Done(Event):
    i: int


class FanOut(Workflow):
    @step
    async def spread(self, ctx: Context, ev: StartEvent) -> Item | None:
        for i in range(8):
            ctx.send_event(Item(i=i))
        return None

    @step(num_workers=4)
    async def work(self, ev: Item) -> Done:
        await asyncio.sleep(0.001)
        return Done(i=ev.i)

    @step
    async def gather(self, ctx: Context, ev: Done) -> StopEvent | None:
        done = ctx.collect_events(ev, [Done] * 8)
        return None if done is None else StopEvent(result=sorted(d.i for d in done))


async def test_workers_of_a_step_each_get_their_own_spans(tracing: Tracing) -> None:
    assert await FanOut().run() == list(range(8))
    run_span = tracing.one("FanOut.run")
    work = tracing.named("FanOut.work")
    assert len(work) == 8
    assert all(parent_id(s) == run_span.context.span_id for s in work)
    assert len({attrs(s)["workflow.step.worker"] for s in work}) > 1
    sends = tracing.named("emit Item")
    assert len(sends) == 8
    spread = tracing.one("FanOut.spread")
    assert all(parent_id(s) == spread.context.span_id and attrs(s)["workflow.event.source"] == "send_event" for s in sends)
    # each work span links to the send that caused it
    causes = {s.context.span_id for s in sends}
    assert {link.context.span_id for s in work for link in s.links} == causes


class SyncSteps(Workflow):
    @step
    def compute(self, ev: StartEvent) -> StopEvent:
        with trace.get_tracer("user").start_as_current_span("in thread"):
            logging.getLogger("test.sync").warning("computing in %s", threading.current_thread().name)
        return StopEvent(result=threading.current_thread() is threading.main_thread())


async def test_sync_step_runs_in_a_thread_under_its_step_span(tracing: Tracing, caplog: pytest.LogCaptureFixture) -> None:
    user_tracer = tracing.provider.get_tracer("user")
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.WARNING, "test.sync"):
        patch.setattr(trace, "get_tracer", lambda *a, **k: user_tracer)
        handler = SyncSteps().run()
        ran_in_main_thread = await handler
    assert ran_in_main_thread is False
    step_span, user_span = tracing.one("SyncSteps.compute"), tracing.one("in thread")
    assert parent_id(user_span) == step_span.context.span_id
    (record,) = [r for r in caplog.records if r.name == "test.sync"]
    assert record.otelTraceID == format(user_span.context.trace_id, "032x")  # type: ignore[attr-defined]
    assert record.otelSpanID == format(user_span.context.span_id, "016x")  # type: ignore[attr-defined]
    assert record.workflow_run_id == handler.run_id  # type: ignore[attr-defined]


# -- nesting --------------------------------------------------------------------------------
class Child(Workflow):
    @step
    async def echo(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=f"child:{ev.x}")


class Parent(Workflow):
    @step
    async def call(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=await Child().run(x="hi"))


async def test_child_workflow_nests_under_the_calling_step(tracing: Tracing) -> None:
    assert await Parent().run() == "child:hi"
    call, child_run = tracing.one("Parent.call"), tracing.one("Child.run")
    assert parent_id(child_run) == call.context.span_id
    assert child_run.context.trace_id == call.context.trace_id
    assert parent_id(tracing.one("Child.echo")) == child_run.context.span_id
    assert attrs(tracing.one("Child.echo"))["workflow.run_id"] != attrs(call)["workflow.run_id"]


class Traced(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=await lookup(ev.q))


@get_dispatcher().span
async def lookup(query: str) -> dict[str, Any]:
    get_dispatcher().event("cache.miss", query=query)
    return {"rows": [query]}


async def test_dispatcher_span_and_event_nest_under_the_step(tracing: Tracing) -> None:
    assert await Traced().run(q="abc") == {"rows": ["abc"]}
    step_span, user_span = tracing.one("Traced.go"), tracing.one("lookup")
    assert parent_id(user_span) == step_span.context.span_id
    assert json.loads(attrs(user_span)["input.value"]) == {"query": "abc"}
    assert json.loads(attrs(user_span)["output.value"]) == {"rows": ["abc"]}
    (event,) = user_span.events
    assert event.name == "cache.miss" and dict(event.attributes or {}) == {"query": "abc"}


# -- errors and outcomes --------------------------------------------------------------------
class Flaky(Workflow):
    attempts = 0

    @step(retry_policy=retry_policy(wait=wait_none(), stop=stop_after_attempt(3)))
    async def shaky(self, ev: StartEvent) -> StopEvent:
        Flaky.attempts += 1
        if Flaky.attempts < 3:
            raise ConnectionError(f"try {Flaky.attempts}")
        return StopEvent(result="ok")


async def test_retries_are_separate_step_spans(tracing: Tracing) -> None:
    Flaky.attempts = 0
    assert await Flaky().run() == "ok"
    attempts = sorted(tracing.named("Flaky.shaky"), key=lambda s: attrs(s)["workflow.step.attempt"])
    assert [attrs(s)["workflow.step.attempt"] for s in attempts] == [1, 2, 3]
    assert [s.status.status_code for s in attempts] == [StatusCode.UNSET, StatusCode.UNSET, StatusCode.OK]
    assert [attrs(s)["workflow.step.outcome"] for s in attempts] == ["retrying", "retrying", "completed"]
    assert not [s.name for s in tracing.spans() if s.status.status_code == StatusCode.ERROR]  # the run recovered
    assert tracing.one("Flaky.run").status.status_code == StatusCode.OK
    assert len(tracing.named("backoff shaky")) == 2
    assert attempts[0].events[0].attributes["exception.message"] == "try 1"  # type: ignore[index]
    (retries,) = tracing.metric_points("workflow.step.retries")
    assert retries.value == 2


class Broken(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise ValueError("kaboom")


async def test_failing_run_marks_step_and_run_as_errors(tracing: Tracing) -> None:
    with pytest.raises(ValueError, match="kaboom"):
        await Broken().run()
    step_span, run_span = tracing.one("Broken.explode"), tracing.one("Broken.run")
    assert step_span.status.status_code == run_span.status.status_code == StatusCode.ERROR
    assert attrs(run_span)["workflow.run.status"] == "failed"
    assert step_span.events[0].name == "exception"
    assert tracing.leaked() == []


class Stuck(Workflow):
    @step
    async def hang(self, ev: StartEvent) -> StopEvent:
        await asyncio.Event().wait()
        return StopEvent()


async def test_timed_out_run_ends_every_span(tracing: Tracing) -> None:
    with pytest.raises(WorkflowTimeoutError):
        await Stuck(timeout=0.05).run()
    run_span = tracing.one("Stuck.run")
    assert run_span.status.status_code == StatusCode.ERROR
    assert attrs(run_span)["workflow.run.status"] == "timed_out"
    step_span = tracing.one("Stuck.hang")
    assert attrs(step_span)["workflow.step.outcome"] == "timed_out"
    assert step_span.status.status_code == StatusCode.ERROR  # what ran too long is red
    assert tracing.leaked() == []


async def test_cancelled_run_is_not_an_error(tracing: Tracing) -> None:
    handler = Stuck().run()
    deadline = time.monotonic() + 10
    while "Stuck.hang" not in tracing.open_spans.open.values():  # the step is running
        assert time.monotonic() < deadline, "the step never started"
        await asyncio.sleep(0.001)
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    run_span = tracing.one("Stuck.run")
    assert run_span.status.status_code == StatusCode.UNSET
    assert attrs(run_span)["workflow.run.status"] == "cancelled"
    assert run_span.events == ()  # a cancel is not recorded as an exception
    step_span = tracing.one("Stuck.hang")
    assert attrs(step_span)["workflow.step.outcome"] == "cancelled"
    assert step_span.status.status_code == StatusCode.UNSET
    assert tracing.leaked() == []


# -- human in the loop ---------------------------------------------------------------------
class AskHuman(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="name?"), timeout=30
        )
        return StopEvent(result=f"hello {answer.response}")


async def test_wait_for_a_human_is_a_wait_span_under_the_step(tracing: Tracing) -> None:
    handler = AskHuman().run()
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response="ann"))
    assert await handler == "hello ann"
    wait = tracing.one("wait HumanResponseEvent")
    asks = sorted(tracing.named("AskHuman.ask"), key=lambda s: s.start_time or 0)
    assert [attrs(s)["workflow.step.outcome"] for s in asks] == ["waiting", "completed"]
    assert parent_id(wait) == asks[0].context.span_id
    assert attrs(wait)["workflow.wait.outcome"] == "received"
    assert json.loads(attrs(wait)["output.value"]) == {"response": "ann"}
    external = tracing.one("emit HumanResponseEvent")
    assert attrs(external)["workflow.event.source"] == "external"
    assert parent_id(external) == tracing.one("AskHuman.run").context.span_id
    assert tracing.leaked() == []


# -- payload options end to end ------------------------------------------------------------
class Secretive(Workflow):
    @step
    async def use(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("api_key", ev.api_key)
        return StopEvent(result={"note": ev.note})


async def test_capture_off_redaction_and_masking_end_to_end(isolated_root: None) -> None:
    def redact(value: Any) -> Any:
        return json.loads(json.dumps(value).replace("ann@example.com", "<email>"))

    for options, forbidden in (
        ({}, ["sk-live-1"]),
        ({"redact": redact}, ["sk-live-1", "ann@example.com"]),
        ({"capture_content": False}, ["sk-live-1", "ann@example.com", "long note"]),
    ):
        setup = make_tracing(**options)
        get_dispatcher().add_handler(setup.handler)
        try:
            await Secretive().run(api_key="sk-live-1", note="long note ann@example.com")
        finally:
            get_dispatcher().remove_handler(setup.handler)
        dumped = json.dumps([attrs(s) for s in setup.spans()], default=list)
        for text in forbidden:
            assert text not in dumped, (options, text)
        assert "Secretive.use" in {s.name for s in setup.spans()}
        setup.provider.shutdown()


# -- tracing never breaks a run --------------------------------------------------------------
class RaisingHandler:
    def handle(self, event: InstrumentationEvent) -> bool | None:
        raise RuntimeError("handler bug")


class FailingExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise ConnectionError("backend down")


async def test_raising_handler_and_exporter_never_break_a_run(tracing: Tracing, caplog: pytest.LogCaptureFixture) -> None:
    tracing.provider.add_span_processor(SimpleSpanProcessor(FailingExporter()))
    bad = RaisingHandler()
    root = get_dispatcher()
    root.add_handler(bad)
    errors_before = root.handler_errors.get("RaisingHandler", 0)
    try:
        assert await MyWorkflow().run(input_msg="x") == "Processed 1 times, data length: 1"
        assert await MyWorkflow().run(input_msg="y") == "Processed 1 times, data length: 1"
    finally:
        root.remove_handler(bad)
    assert root.handler_errors["RaisingHandler"] == errors_before + 2  # only RunStarted: it then opts out
    assert len(tracing.named("MyWorkflow.run")) == 2  # the good handler kept tracing
    assert sum("RaisingHandler raised RuntimeError" in r.getMessage() for r in caplog.records) <= 1


# -- several handlers ----------------------------------------------------------------------
class Nested(Workflow):
    @step
    async def outer(self, ev: StartEvent) -> StopEvent:
        await lookup("x")
        await Child().run(x="y")
        # after the decorated call, the step span is current again for every handler
        with trace.get_tracer("user").start_as_current_span("after lookup"):
            pass
        return StopEvent(result="ok")


async def test_two_handlers_each_keep_a_whole_tree(isolated_root: None) -> None:
    first, second = make_tracing(), make_tracing()
    root = get_dispatcher()
    root.add_handler(first.handler)
    root.add_handler(second.handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(trace, "get_tracer", lambda *a, **k: second.provider.get_tracer("user"))
            assert await Nested().run() == "ok"
    finally:
        root.remove_handler(first.handler)
        root.remove_handler(second.handler)
    for setup in (first, second):
        step_span, lookup_span = setup.one("Nested.outer"), setup.one("lookup")
        assert parent_id(lookup_span) == parent_id(setup.one("Child.run")) == step_span.context.span_id
        assert parent_id(setup.one("Nested.run")) is None
        assert setup.leaked() == []
    # the user's span nests under the step span of the handler added last
    assert parent_id(second.one("after lookup")) == second.one("Nested.outer").context.span_id
    for setup in (first, second):
        setup.provider.shutdown()


async def test_user_span_cut_off_by_a_cancel_records_no_exception(tracing: Tracing) -> None:
    started = asyncio.Event()

    @get_dispatcher().span
    async def slow_helper() -> None:
        started.set()
        await asyncio.sleep(30)

    class UsesHelper(Workflow):
        @step
        async def work(self, ev: StartEvent) -> StopEvent:
            await slow_helper()
            return StopEvent()

    handler = UsesHelper().run()
    await asyncio.wait_for(started.wait(), timeout=10)
    await handler.cancel_run()
    helper_span = next(s for s in tracing.spans() if s.name.endswith("slow_helper"))
    assert helper_span.events == ()
    assert helper_span.status.status_code != StatusCode.ERROR
    assert attrs(helper_span)["workflow.step.outcome"] == "cancelled"


class ListFanOut(Workflow):
    @step
    async def split(self, ev: StartEvent) -> list[Item]:
        return [Item(i=i) for i in range(4)]

    @step
    async def work(self, ev: Item) -> Done:
        return Done(i=ev.i)

    @step
    async def gather(self, evs: list[Done]) -> StopEvent:
        return StopEvent(result=sorted(e.i for e in evs))


async def test_a_list_fan_out_and_its_collect_step_are_traced(tracing: Tracing) -> None:
    assert await ListFanOut().run() == [0, 1, 2, 3]
    run_span = tracing.one("ListFanOut.run")
    assert len(tracing.named("ListFanOut.work")) == 4
    assert len(tracing.named("emit Item")) == 4
    gather = tracing.one("ListFanOut.gather")
    release = tracing.one("emit CollectionReleaseEvent")
    assert attrs(release)["workflow.event.source"] == "release" and parent_id(release) == run_span.context.span_id
    assert {link.context.span_id for link in gather.links} == {release.context.span_id}
    assert not tracing.leaked()
