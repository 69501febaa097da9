"""The llama_index_instrumentation bridge: run and step spans, tags and events (API.md §16).

A real span handler and a real event handler are registered on
``llama_index_instrumentation``'s root dispatcher, the way LlamaIndex users do it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import llama_index_instrumentation as llama
import pytest
from llama_index_instrumentation.base import BaseEvent
from llama_index_instrumentation.dispatcher import active_instrument_tags, instrument_tags
from llama_index_instrumentation.event_handlers import BaseEventHandler
from llama_index_instrumentation.span import SimpleSpan
from llama_index_instrumentation.span_handlers import BaseSpanHandler, NullSpanHandler
from pydantic import Field

from workflows import Context, Workflow, step
from workflows.errors import WorkflowCancelledByUser
from workflows.events import Event, HumanResponseEvent, StartEvent, StopEvent
from workflows.instrumentation import RunInfo, RunStarted, get_dispatcher
from workflows.instrumentation.dispatcher import _ensure_configured
from workflows.instrumentation.llamaindex import LlamaIndexBridge, summarize_event

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class RecordingSpanHandler(BaseSpanHandler[SimpleSpan]):
    """Keeps every span it sees: parent, tags, and how it ended."""

    seen: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan:
        self.seen[id_] = {"parent": parent_span_id, "tags": tags, "args": dict(bound_args.arguments)}
        return SimpleSpan(id_=id_, parent_id=parent_span_id, tags=tags or {})

    def prepare_to_exit_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None,
        result: Any | None = None, **kwargs: Any,
    ) -> SimpleSpan:
        self.seen[id_].update(end="exit", result=result)
        return self.open_spans[id_]

    def prepare_to_drop_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None,
        err: BaseException | None = None, **kwargs: Any,
    ) -> SimpleSpan:
        self.seen[id_].update(end="drop", err=err)
        return self.open_spans[id_]

    def named(self, pattern: str) -> dict[str, dict[str, Any]]:
        return {span_id: s for span_id, s in self.seen.items() if re.fullmatch(pattern, span_id)}


class RecordingEventHandler(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def named(self, class_name: str) -> list[Any]:
        return [e for e in self.events if e.class_name() == class_name]


@pytest.fixture
def recorded() -> Iterator[tuple[RecordingSpanHandler, RecordingEventHandler]]:
    _ensure_configured()
    assert any(isinstance(h, LlamaIndexBridge) for h in get_dispatcher().handlers), "bridge not installed"
    root = llama.get_dispatcher()
    spans, events = RecordingSpanHandler(), RecordingEventHandler()
    root.add_span_handler(spans)
    root.add_event_handler(events)
    yield spans, events
    root.span_handlers = [h for h in root.span_handlers if h is not spans]
    root.event_handlers = [h for h in root.event_handlers if h is not events]


async def until(condition: Any) -> None:
    """Yield to the loop until ``condition()`` holds (fails after 5 s)."""
    deadline = asyncio.get_running_loop().time() + 5
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in 5 s"
        await asyncio.sleep(0.001)


class Middle(Event):
    text: str


tags_in_steps: list[dict[str, Any]] = []


class Flow(Workflow):
    @step
    async def first(self, ev: StartEvent) -> Middle:
        tags_in_steps.append(dict(active_instrument_tags.get()))
        return Middle(text=ev.x)

    @step
    def second(self, ev: Middle) -> StopEvent:  # sync: runs in a thread
        tags_in_steps.append(dict(active_instrument_tags.get()))
        return StopEvent(result=f"done:{ev.text}")


caller_dispatcher = llama.get_dispatcher("tests.caller")


@caller_dispatcher.span
async def call_flow(flow: Flow) -> tuple[str, Any]:
    handler = flow.run(x="hi")
    return handler.run_id, await handler


# checklist 78
async def test_a_run_is_a_span_under_the_caller_with_one_tagged_child_span_per_step(recorded: Any) -> None:
    spans, events = recorded
    tags_in_steps.clear()
    run_id, result = await call_flow(Flow(timeout=5))
    assert result == "done:hi"

    [caller_id] = spans.named(rf"call_flow-{UUID}")
    [(run_span_id, run_span)] = spans.named(rf"Flow\.run-{UUID}").items()
    assert run_span["parent"] == caller_id and run_span["end"] == "exit"
    first = spans.named(rf"Flow\.first-{UUID}")
    second = spans.named(rf"Flow\.second-{UUID}")
    assert len(first) == len(second) == 1
    for span, input_event, summary in (
        (*first.values(), "StartEvent", "StartEvent(x='hi')"),
        (*second.values(), "Middle", "Middle(text='hi')"),
    ):
        assert span["parent"] == run_span_id and span["end"] == "exit"
        assert span["tags"]["llamaindex.run_id"] == run_id
        assert span["tags"]["llamaindex.step.input_event"] == input_event
        assert span["tags"]["llamaindex.step.input_summary"] == summary
    assert next(iter(first.values()))["args"]["ev"].x == "hi"  # bound to what the step was called with
    assert [tags["llamaindex.run_id"] for tags in tags_in_steps] == [run_id, run_id]
    assert active_instrument_tags.get() == {}  # reset once the run is over

    assert [e.output for e in events.named("step.output")] == ["Middle(text='hi')", "StopEvent(result='done:hi')"]
    [run_output] = events.named("workflow.output")
    assert run_output.output == "StopEvent(result='done:hi')" and run_output.span_id == run_span_id


# checklist 78
async def test_a_step_parked_by_wait_for_event_exits_its_span_and_reruns_in_a_new_one(recorded: Any) -> None:
    spans, _ = recorded

    class Asker(Workflow):
        @step
        async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
            reply = await ctx.wait_for_event(HumanResponseEvent)
            return StopEvent(result=reply.response)

    handler = Asker(timeout=5).run()
    await until(lambda: spans.named(r".*Asker\.ask-.*"))  # the first attempt has started
    handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await handler == "yes"
    attempts = spans.named(r".*Asker\.ask-.*")
    assert len(attempts) == 2 and all(s["end"] == "exit" for s in attempts.values())


def test_summaries_cut_long_strings_big_collections_and_the_whole_line() -> None:
    assert summarize_event(StopEvent(result="child:hi")) == "StopEvent(result='child:hi')"
    ev = StartEvent(s="a" * 60, items=[1, 2, 3, 4], few=[1], d={str(i): i for i in range(4)})
    assert summarize_event(ev) == f"StartEvent(s='{'a' * 50}...', items=[4 items], few=[1], d={{4 keys}})"
    long = summarize_event(StartEvent(**{f"k{i}": "v" * 40 for i in range(10)}))
    assert len(long) == 200 and long.endswith("...")


def test_the_bridge_opts_out_of_runs_until_the_package_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "llama_index_instrumentation")
    bridge = LlamaIndexBridge()
    event = RunStarted(run=RunInfo("W", "run1", "s1", "m.W"), start_event=StartEvent())
    assert bridge.handle(event) is False
    assert event.run is not None and event.run.scratch == {}


class TagFilter(logging.Filter):
    """Copies llama-index's active instrument tags onto each record (as the reference's
    context-logging example does with ``extra={**active_instrument_tags.get()}``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tags = dict(active_instrument_tags.get())
        return True


async def test_logs_in_steps_carry_the_run_tags_without_any_llama_handler(caplog: pytest.LogCaptureFixture) -> None:
    assert not any(not isinstance(h, NullSpanHandler) for h in llama.get_dispatcher().span_handlers)
    logger = logging.getLogger("tests.tagged")
    tag_filter = TagFilter()
    logger.addFilter(tag_filter)

    class Logged(Workflow):
        @step
        async def first(self, ev: StartEvent) -> Middle:
            logger.warning("first")
            return Middle(text="m")

        @step
        async def second(self, ev: Middle) -> StopEvent:
            logger.warning("second")
            return StopEvent(result="ok")

    try:
        with caplog.at_level(logging.WARNING, logger="tests.tagged"), instrument_tags({"request_id": "r1"}):
            handler = Logged(timeout=5).run()
            await handler
    finally:
        logger.removeFilter(tag_filter)
    tags = {record.getMessage(): record.tags for record in caplog.records if record.name == "tests.tagged"}
    assert tags == {
        "first": {"request_id": "r1", "llamaindex.run_id": handler.run_id,
                  "llamaindex.step.input_event": "StartEvent", "llamaindex.step.input_summary": "StartEvent()"},
        "second": {"request_id": "r1", "llamaindex.run_id": handler.run_id,
                   "llamaindex.step.input_event": "Middle", "llamaindex.step.input_summary": "Middle(text='m')"},
    }
    assert active_instrument_tags.get() == {}


class Boom(Exception):
    pass


class Failing(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise Boom("kaput")


# checklist 79
async def test_a_failing_step_drops_its_span_and_the_run_span_with_the_exception(recorded: Any) -> None:
    spans, events = recorded
    with pytest.raises(Boom) as raised:
        await Failing(timeout=5).run()
    [(run_id, run_span)] = spans.named(rf"Failing\.run-{UUID}").items()
    [(step_id, step_span)] = spans.named(rf"Failing\.explode-{UUID}").items()
    assert run_span["end"] == step_span["end"] == "drop"
    assert run_span["err"] is raised.value and step_span["err"] is raised.value
    assert {e.span_id: e.err_str for e in events.named("SpanDropEvent")} == {run_id: "kaput", step_id: "kaput"}


class Stuck(Workflow):
    @step
    async def hang(self, ev: StartEvent) -> StopEvent:
        await asyncio.Event().wait()
        return StopEvent()


# checklist 79
async def test_cancelling_a_run_exits_its_spans_normally_with_span_cancelled_events(recorded: Any) -> None:
    spans, events = recorded
    handler = Stuck(timeout=5).run()
    await until(lambda: spans.named(rf"Stuck\.hang-{UUID}"))
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    [run_span] = spans.named(rf"Stuck\.run-{UUID}").values()
    [step_span] = spans.named(rf"Stuck\.hang-{UUID}").values()
    assert run_span["end"] == step_span["end"] == "exit"
    reasons = sorted(e.reason for e in events.named("SpanCancelledEvent"))
    assert reasons == ["step cancelled", "workflow cancelled by user"]
    assert events.named("SpanDropEvent") == []
