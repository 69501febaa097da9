"""What a user sees in Phoenix after running workflows through the plugin.

Every test runs real workflows, exports through ``workflows_phoenix.register`` to a real
Phoenix server and reads the result back through Phoenix's REST API.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel
from support.phoenix import PhoenixProject, Span, get_json

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_none

# -- workflows under test -------------------------------------------------------------


class Draft(Event):
    text: str
    sources: list[str]


class WriterState(BaseModel):
    drafts: int = 0


class Writer(Workflow):
    @step
    async def draft(self, ctx: Context[WriterState], ev: StartEvent) -> Draft:
        async with ctx.store.edit_state() as state:
            state.drafts += 1
        return Draft(text=f"Notes on {ev.topic}", sources=["guide", "wiki"])

    @step
    async def publish(self, ev: Draft) -> StopEvent:
        return StopEvent(result={"title": ev.text, "sources": len(ev.sources)})


WRITER_SPANS = 7  # run, emit StartEvent, draft, state.edit, emit Draft, publish, emit StopEvent


class CityLookup(Workflow):
    @step
    async def find(self, ev: StartEvent) -> StopEvent:
        raise LookupError(f"no such city: {ev.city}")


class Flaky(Workflow):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures_left = failures

    @step(retry_policy=retry_policy(wait=wait_none(), stop=stop_after_attempt(3)))
    async def fetch(self, ev: StartEvent) -> StopEvent:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("upstream hung up")
        return StopEvent(result="fetched")


class Doubler(Workflow):
    @step
    async def double(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev.x * 2)


class Orchestrator(Workflow):
    @step
    async def delegate(self, ev: StartEvent) -> StopEvent:
        doubled = await Doubler().run(x=ev.x)
        return StopEvent(result={"doubled": doubled})


# -- reading helpers ------------------------------------------------------------------


def named(spans: list[Span], name: str) -> list[Span]:
    return sorted((s for s in spans if s["name"] == name), key=lambda s: s["start_time"])


def one(spans: list[Span], name: str) -> Span:
    found = named(spans, name)
    assert len(found) == 1, f"expected one span {name!r}, found {len(found)} among {[s['name'] for s in spans]}"
    return found[0]


def span_id(span: Span) -> str:
    return str(span["context"]["span_id"])


def json_value(span: Span, direction: str) -> Any:
    attributes = span["attributes"]
    assert attributes[f"{direction}.mime_type"] == "application/json", span["name"]
    return json.loads(attributes[f"{direction}.value"])


ENGINE_INTERNALS = re.compile(r"object at 0x|<workflows\.|Context\(|RunInfo|_RunTrace")


# -- the tree -------------------------------------------------------------------------


async def test_run_arrives_in_the_named_project_as_one_tree_of_chain_spans(phoenix_project: PhoenixProject) -> None:
    result = await Writer().run(topic="Lisbon")
    assert result == {"title": "Notes on Lisbon", "sources": 2}

    spans = phoenix_project.spans(WRITER_SPANS)

    assert get_json(phoenix_project.server.base_url, f"/v1/projects/{phoenix_project.name}")["name"] == (
        phoenix_project.name
    )
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    run = one(spans, "Writer.run")
    assert run["parent_id"] is None
    draft, publish = one(spans, "Writer.draft"), one(spans, "Writer.publish")
    assert draft["parent_id"] == span_id(run)
    assert publish["parent_id"] == span_id(run)
    assert one(spans, "emit StartEvent")["parent_id"] == span_id(run)
    assert one(spans, "state.edit")["parent_id"] == span_id(draft)
    assert one(spans, "emit Draft")["parent_id"] == span_id(draft)
    assert one(spans, "emit StopEvent")["parent_id"] == span_id(publish)
    assert {s["span_kind"] for s in spans} == {"CHAIN"}
    assert {s["status_code"] for s in spans} == {"OK"}


async def test_run_and_step_spans_show_readable_json_input_and_output(phoenix_project: PhoenixProject) -> None:
    await Writer().run(topic="Lisbon")

    spans = phoenix_project.spans(WRITER_SPANS)

    run, draft, publish = one(spans, "Writer.run"), one(spans, "Writer.draft"), one(spans, "Writer.publish")
    assert json_value(run, "input") == {"topic": "Lisbon"}
    assert json_value(run, "output") == {"title": "Notes on Lisbon", "sources": 2}
    assert json_value(draft, "input") == {"topic": "Lisbon"}
    assert json_value(draft, "output") == {"text": "Notes on Lisbon", "sources": ["guide", "wiki"]}
    assert json_value(publish, "input") == json_value(draft, "output")
    assert "Notes on Lisbon" in publish["attributes"]["output.value"]
    # the state change reads as a JSON Patch of the state, not as an object
    assert json_value(one(spans, "state.edit"), "output") == [{"op": "replace", "path": "/drafts", "value": 1}]
    for span in spans:
        for key, value in span["attributes"].items():
            assert not ENGINE_INTERNALS.search(str(value)), f"{span['name']} {key} shows engine internals: {value}"


# -- sessions -------------------------------------------------------------------------


async def test_runs_sharing_a_context_are_one_phoenix_session(phoenix_project: PhoenixProject) -> None:
    writer = Writer()
    conversation: Context[WriterState] = Context(writer)
    await writer.run(topic="Lisbon", ctx=conversation)
    await writer.run(topic="Porto", ctx=conversation)
    await writer.run(topic="Faro")  # a Context of its own

    spans = phoenix_project.spans(3 * WRITER_SPANS)
    sessions = phoenix_project.sessions(2)

    runs = named(spans, "Writer.run")
    session_of = {json_value(r, "input")["topic"]: r["attributes"]["session.id"] for r in runs}
    assert session_of["Lisbon"] == session_of["Porto"] != session_of["Faro"]
    traces_by_session = {s["session_id"]: {t["trace_id"] for t in s["traces"]} for s in sessions}
    trace_of = {json_value(r, "input")["topic"]: r["context"]["trace_id"] for r in runs}
    assert traces_by_session == {
        session_of["Lisbon"]: {trace_of["Lisbon"], trace_of["Porto"]},
        session_of["Faro"]: {trace_of["Faro"]},
    }
    # every span carries its run's session, so Phoenix binds the trace whichever span comes first
    for run in runs:
        trace_spans = [s for s in spans if s["context"]["trace_id"] == run["context"]["trace_id"]]
        assert {s["attributes"]["session.id"] for s in trace_spans} == {run["attributes"]["session.id"]}


# -- failures and retries -------------------------------------------------------------


async def test_failed_step_shows_its_exception_and_fails_the_run(phoenix_project: PhoenixProject) -> None:
    with pytest.raises(LookupError, match="no such city: Atlantis"):
        await CityLookup().run(city="Atlantis")

    spans = phoenix_project.spans(3)  # run, emit StartEvent, find

    find, run = one(spans, "CityLookup.find"), one(spans, "CityLookup.run")
    assert find["status_code"] == "ERROR"
    assert "no such city: Atlantis" in find["status_message"]
    [exception] = [e for e in find["events"] if e["name"] == "exception"]
    assert exception["attributes"]["exception.type"].endswith("LookupError")
    assert exception["attributes"]["exception.message"] == "no such city: Atlantis"
    assert "raise LookupError" in exception["attributes"]["exception.stacktrace"]
    assert run["status_code"] == "ERROR"
    assert run["attributes"]["workflow.run.status"] == "failed"
    assert json_value(run, "input") == {"city": "Atlantis"}


async def test_retried_step_shows_one_span_per_attempt(phoenix_project: PhoenixProject) -> None:
    assert await Flaky(failures=2).run() == "fetched"

    spans = phoenix_project.spans(8)  # run, emit StartEvent, 3 attempts, 2 back-offs, emit StopEvent

    run = one(spans, "Flaky.run")
    attempts = named(spans, "Flaky.fetch")
    assert [a["attributes"]["workflow.step.attempt"] for a in attempts] == [1, 2, 3]
    # retried attempts are not errors (the run recovered) but keep their exception
    assert [a["status_code"] for a in attempts] == ["UNSET", "UNSET", "OK"]
    assert [b["attributes"]["workflow.backoff.attempt"] for b in named(spans, "backoff fetch")] == [2, 3]
    assert all(a["parent_id"] == span_id(run) for a in attempts)
    for failed in attempts[:2]:
        [exception] = [e for e in failed["events"] if e["name"] == "exception"]
        assert exception["attributes"]["exception.message"] == "upstream hung up"
    assert attempts[2]["events"] == []
    assert run["status_code"] == "OK"


# -- nesting --------------------------------------------------------------------------


async def test_child_workflow_run_nests_under_the_step_that_ran_it(phoenix_project: PhoenixProject) -> None:
    orchestrator = Orchestrator()
    context: Context[Any] = Context(orchestrator)
    assert await orchestrator.run(x=21, ctx=context) == {"doubled": 42}

    # parent: run, emit StartEvent, delegate, emit StopEvent; child: the same four
    spans = phoenix_project.spans(8)

    parent_run, delegate = one(spans, "Orchestrator.run"), one(spans, "Orchestrator.delegate")
    child_run, child_step = one(spans, "Doubler.run"), one(spans, "Doubler.double")
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    assert parent_run["parent_id"] is None
    assert child_run["parent_id"] == span_id(delegate)
    assert child_step["parent_id"] == span_id(child_run)
    assert json_value(child_run, "input") == {"x": 21}
    assert json_value(child_run, "output") == 42
    # the whole tree is filed under the parent's session, the conversation the user knows
    [session] = phoenix_project.sessions(1)
    assert session["session_id"] == parent_run["attributes"]["session.id"]
    assert [t["trace_id"] for t in session["traces"]] == [parent_run["context"]["trace_id"]]
