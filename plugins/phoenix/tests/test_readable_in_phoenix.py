"""The readable trace, as Phoenix stores it: the compact tree (``WORKFLOWS_TRACE_DETAIL=steps``),
the wait for a human, a recovered run that is not listed as failed, and a step's kind.

Real workflows, exported by ``workflows_phoenix.register`` to a real Phoenix, read back
over Phoenix's REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import workflows_phoenix
from support.phoenix import PhoenixProject, PhoenixServer, Span, unique_project_name

from workflows import Context, Workflow, step
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.instrumentation.settings import TRACE_DETAIL_VAR
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed


class Found(Event):
    hits: int


class Research(Workflow):
    @step(kind="RETRIEVER")
    async def search(self, ctx: Context, ev: StartEvent) -> Found:
        await ctx.store.set("query", ev.topic)
        return Found(hits=2)

    @step(retry_policy=retry_policy(wait=wait_fixed(0.01), stop=stop_after_attempt(2)))
    async def summarize(self, ev: Found) -> InputRequiredEvent:
        Research.calls += 1
        if Research.calls == 1:
            raise ConnectionError("the model hung up")
        return InputRequiredEvent(prefix=f"{ev.hits} hits: publish?")

    @step
    async def publish(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)

    calls = 0


async def run_with_approval(reply: str) -> Any:
    Research.calls = 0
    handler = Research(timeout=10).run(topic="otel")
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response=reply))
    return await handler


def one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, f"expected one {name!r} among {sorted(s['name'] for s in spans)}"
    return found[0]


@pytest.fixture
def compact_project(phoenix_server: PhoenixServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PhoenixProject]:
    """The plugin registered for a fresh project, with the compact trace detail."""
    monkeypatch.setenv(TRACE_DETAIL_VAR, "steps")
    name = unique_project_name("compact")
    provider = workflows_phoenix.register(name, endpoint=phoenix_server.base_url, set_global=False)
    try:
        yield PhoenixProject(phoenix_server, name, provider)
    finally:
        provider.shutdown()


# run, search, summarize x2, backoff, wait, publish
COMPACT_SPANS = 7


async def test_the_compact_tree_has_run_step_and_wait_spans_only(compact_project: PhoenixProject) -> None:
    assert await run_with_approval("yes") == "yes"
    spans = compact_project.spans(COMPACT_SPANS)
    assert sorted(s["name"] for s in spans) == sorted(
        ["Research.run", "Research.search", "Research.summarize", "Research.summarize", "backoff summarize",
         "wait HumanResponseEvent", "Research.publish"]  # fmt: skip
    )
    run = one(spans, "Research.run")
    assert {s["parent_id"] for s in spans if s is not run} == {run["context"]["span_id"]}
    # the emitted events and the state change are span events on the span they came from
    search = one(spans, "Research.search")
    assert [e["name"] for e in search["events"]] == ["state.set", "emit Found"]
    assert search["events"][1]["attributes"]["workflow.event.type"] == "Found"
    assert [e["name"] for e in run["events"]] == ["emit StartEvent", "emit HumanResponseEvent"]


async def test_the_wait_for_a_human_is_a_span_under_the_run(compact_project: PhoenixProject) -> None:
    await run_with_approval("ship it")
    spans = compact_project.spans(COMPACT_SPANS)
    run, wait = one(spans, "Research.run"), one(spans, "wait HumanResponseEvent")
    assert wait["parent_id"] == run["context"]["span_id"]
    assert wait["status_code"] == "OK"
    assert wait["attributes"]["workflow.wait.outcome"] == "received"
    assert wait["attributes"]["workflow.step.name"] == "summarize"
    assert "publish?" in wait["attributes"]["input.value"]
    assert "ship it" in wait["attributes"]["output.value"]
    publish = one(spans, "Research.publish")
    assert wait["end_time"] <= publish["start_time"]


async def test_a_recovered_run_is_not_listed_as_failed(compact_project: PhoenixProject) -> None:
    await run_with_approval("yes")
    spans = compact_project.spans(COMPACT_SPANS)
    # Phoenix counts a trace's errors over its spans' status: none is an error
    assert [s["name"] for s in spans if s["status_code"] == "ERROR"] == []
    assert one(spans, "Research.run")["status_code"] == "OK"
    failed = [s for s in spans if s["name"] == "Research.summarize" and s["attributes"]["workflow.step.attempt"] == 1]
    [attempt] = failed
    assert attempt["status_code"] == "UNSET"
    assert attempt["attributes"]["workflow.step.outcome"] == "retrying"
    [exception] = [e for e in attempt["events"] if e["name"] == "exception"]
    assert exception["attributes"]["exception.message"] == "the model hung up"


async def test_a_step_marked_as_a_retriever_is_one_in_phoenix(compact_project: PhoenixProject) -> None:
    await run_with_approval("yes")
    spans = compact_project.spans(COMPACT_SPANS)
    assert one(spans, "Research.search")["span_kind"] == "RETRIEVER"
    assert one(spans, "Research.publish")["span_kind"] == "CHAIN"
