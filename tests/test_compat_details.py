"""Details of LlamaIndex Workflows' behaviour beyond the checklist that users rely on."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from workflows import Context, Workflow, step
from workflows.context.context import Context as ContextClass
from workflows.errors import ContextSerdeError, ContextStateError
from workflows.events import Event, StartEvent, StopEvent


class Note(Event):
    text: str


class Writer(Workflow):
    @step
    async def write(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.write_event_to_stream(Note(text="one"))
        return StopEvent(result="done")


async def test_deprecated_streaming_queue_delivers_up_to_the_stop_event():
    handler = Writer().run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        queue = handler.ctx.streaming_queue
        assert handler.ctx.streaming_queue is queue
    seen = []
    while True:
        event = await asyncio.wait_for(queue.get(), timeout=5)
        seen.append(event)
        if isinstance(event, StopEvent):
            break
    assert [type(e) for e in seen if not type(e).__name__.startswith(("StepState", "WorkflowIdle"))] == [Note, StopEvent]
    assert await handler == "done"


def test_streaming_queue_before_a_run_is_a_context_state_error():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ContextStateError, match="requires a running workflow"):
            Context(Writer()).streaming_queue  # noqa: B018


async def test_verbose_output_summarises_the_start_event(capsys: pytest.CaptureFixture[str]):
    assert await Writer(verbose=True).run(topic="x") == "done"
    out = capsys.readouterr().out
    assert "[tick] add: StartEvent(topic='x')" in out
    assert "[write:" in out and "complete with StopEvent" in out
    assert "[result] StopEvent(result='done')" in out


class Hop(Event):
    n: int


class Side(Event):
    note: str


class Hopping(Workflow):
    @step
    async def start(self, ctx: Context, ev: StartEvent) -> Hop | Side:
        ctx.send_event(Side(note="s"))
        return Hop(n=1)

    @step
    async def hop(self, ev: Hop) -> None:
        return None

    @step
    async def side(self, ev: Side) -> StopEvent:
        return StopEvent(result="ok")


async def test_verbose_prints_an_add_line_for_every_event_that_enters_the_run(capsys: pytest.CaptureFixture[str]):
    # As LlamaIndex Workflows 2.26 prints them: the start event, sent and returned events;
    # a returned StopEvent is the [result] line, and a step returning None "no result".
    assert await Hopping(verbose=True, timeout=5).run(q="hi") == "ok"
    lines = capsys.readouterr().out.splitlines()
    adds = [line for line in lines if line.startswith("[tick] add:")]
    assert sorted(adds) == ["[tick] add: Hop(n=1)", "[tick] add: Side(note='s')", "[tick] add: StartEvent(q='hi')"]
    assert adds[0] == "[tick] add: StartEvent(q='hi')"
    assert "[hop:0] complete with no result" in lines
    assert "[result] StopEvent(result='ok')" in lines and not any("add: StopEvent" in line for line in lines)


class Relay(Workflow):
    @step
    async def first(self, ev: StartEvent) -> Hop:
        return Hop(n=1)

    @step
    async def second(self, ev: Hop) -> StopEvent:
        return StopEvent(result="done")


async def test_verbose_prints_a_returned_event_after_its_step_completes_and_the_result_before(
    capsys: pytest.CaptureFixture[str],
):
    # The reference's order: a step's "complete with" line, then the event it returned
    # entering the run; the ending StopEvent's [result] line before its step's "complete".
    assert await Relay(verbose=True, timeout=5).run() == "done"
    assert capsys.readouterr().out.splitlines() == [
        "[tick] add: StartEvent()",
        "[first:0] started from StartEvent",
        "[first:0] complete with Hop",
        "[tick] add: Hop(n=1)",
        "[second:0] started from Hop",
        "[result] StopEvent(result='done')",
        "[second:0] complete with StopEvent",
    ]


def test_optional_return_is_recorded_without_none():
    class W(Workflow):
        @step
        async def s(self, ev: StartEvent) -> Note | None:
            return None

        @step
        async def t(self, ev: Note) -> StopEvent:
            return StopEvent()

    assert W.s._step_config.return_types == [Note]  # type: ignore[attr-defined]


def test_malformed_state_payload_names_the_invalid_format():
    with pytest.raises(ContextSerdeError, match="^Context dict specified in an invalid format"):
        ContextClass.from_dict(Writer(), {"version": 2, "state": 5})
