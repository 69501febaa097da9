"""The debugger's store queries, its view of a journal, and its LLM capture, on real parts.

A real SQLite file; runs made by the real engine with the server's DurableRuntime; LLM
spans made by a real OpenTelemetry SDK tracer provider under the engine's step spans.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed
from workflows_server import DurableRuntime, SqliteStore
from workflows_server.debugger.llm import LlmCapture
from workflows_server.debugger.values import MISSING, apply_at, diff
from workflows_server.debugger.view import run_view
from workflows_server.store import HandlerRow
from workflows_server.store.queries import RunIndexUpdate, RunQuery
from search_checks import check_search_at_small_scale


class Mid(Event):
    n: int


class Flaky(Workflow):
    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Mid:
        await ctx.store.set("notes", {"city": ev.get("city")})
        return Mid(n=1)

    @step(retry_policy=retry_policy(wait=wait_fixed(0.01), stop=stop_after_attempt(2)))
    async def second(self, ctx: Context, ev: Mid) -> StopEvent:
        if ctx.retry_info().retry_number == 0:
            raise RuntimeError("flaky on purpose")
        await ctx.store.set("done", True)
        return StopEvent(result="fine")


def test_json_patch_between_values_and_pointer_writes() -> None:
    assert diff({"a": 1, "b": [1]}, {"a": 2, "b": [1, 2], "c": "x"}) == [
        {"op": "replace", "path": "/a", "value": 2},
        {"op": "add", "path": "/b/1", "value": 2},
        {"op": "add", "path": "/c", "value": "x"},
    ]
    assert diff(MISSING, 3, "/x") == [{"op": "add", "path": "/x", "value": 3}]
    assert diff({"k/1": 1}, {}) == [{"op": "remove", "path": "/k~11"}]
    before = {"a": {"b": 1}}
    after = apply_at(before, "/a/c", 2)
    assert after == {"a": {"b": 1, "c": 2}} and before == {"a": {"b": 1}}, "earlier documents stay as they were"
    assert apply_at({}, "/x/y", 1) == {"x": {"y": 1}}
    assert apply_at({"x": 1}, "/x", MISSING) == {}


def test_run_view_folds_attempts_retries_state_changes_and_result(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    runtime = DurableRuntime(store)

    async def run() -> object:
        return await Flaky(runtime=runtime).run(city="Oslo")

    assert asyncio.run(run()) == "fine"
    [row] = store.list_handlers()
    view = run_view(row, store.journal(row.handler_id), store.snapshots(row.handler_id),
                    store.stream(row.handler_id), [])
    assert view["status"] == "completed" and view["result_value"] == "fine"
    assert view["input"] == {"city": "Oslo"}
    assert [(a["step"], a["attempt"], a["outcome"]) for a in view["attempts"]] == [
        ("first", 1, "completed"), ("second", 1, "retrying"), ("second", 2, "completed"),
    ]
    first, retried, last = view["attempts"]
    assert first["keys"] == ["notes"] and first["changes"] == [{"op": "add", "path": "/notes", "value": {"city": "Oslo"}}]
    assert first["state_after"] == {"notes": {"city": "Oslo"}}
    assert retried["error"]["message"] == "flaky on purpose" and "Traceback" in retried["error"]["traceback"]
    [backoff] = view["backoffs"]
    assert backoff["delay"] == 0.01 and backoff["reason"] == "flaky on purpose" and backoff["ended_at"] is not None
    assert last["state_after"] == {"notes": {"city": "Oslo"}, "done": True}
    assert view["steps"]["second"]["state"] == "finished"
    assert sum(1 for a in view["attempts"] if a.get("slowest")) == 1


def _row(store: SqliteStore, handler_id: str, workflow: str, started_at: str, status: str = "completed",
         result: str | None = None) -> None:
    store.create_handler(HandlerRow(handler_id=handler_id, workflow_name=workflow, run_id=handler_id, status=status,
                                    started_at=started_at,
                                    result={"value": {"result": result}, "type": "StopEvent"} if result else None), {})


def test_store_searches_filters_and_pages_runs_with_their_totals(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    for index in range(5):
        _row(store, f"h{index}", "alpha" if index % 2 else "beta", f"2030-01-01T00:00:0{index}+00:00",
             status="failed" if index == 3 else "completed", result=f"answer {index} 50%_off" if index == 1 else None)
        store.index_run(f"h{index}", RunIndexUpdate(session_id="s1" if index < 2 else "s2",
                                                    input_text=f'{{"question": "Trip {index} to Lisbon"}}'))
    store.index_run("h0", RunIndexUpdate(add_steps=2))
    store.index_run("h0", RunIndexUpdate(add_steps=1))
    store.index_run("h4", RunIndexUpdate(parent_id="h0", relation="fork", fork_seq=3))
    page = store.search_runs(RunQuery(limit=2))
    assert [r.row.handler_id for r in page.runs] == ["h4", "h3"] and page.total == 5 and page.next_cursor
    page2 = store.search_runs(RunQuery(limit=2, cursor=page.next_cursor))
    assert [r.row.handler_id for r in page2.runs] == ["h2", "h1"]
    assert [r.row.handler_id for r in store.search_runs(RunQuery(status=["failed"])).runs] == ["h3"]
    assert [r.row.handler_id for r in store.search_runs(RunQuery(workflow_name=["alpha"])).runs] == ["h3", "h1"]
    assert [r.row.handler_id for r in store.search_runs(RunQuery(session_id="s1", oldest_first=True)).runs] == ["h0", "h1"]
    assert [r.row.handler_id for r in store.search_runs(RunQuery(text="TRIP 2")).runs] == ["h2"]
    assert [r.row.handler_id for r in store.search_runs(RunQuery(text="50%_o")).runs] == ["h1"], "% and _ are literal"
    assert store.search_runs(RunQuery(text="%")).total == 1
    window = RunQuery(started_after="2030-01-01T00:00:01+00:00", started_before="2030-01-01T00:00:03+00:00")
    assert [r.row.handler_id for r in store.search_runs(window).runs] == ["h2", "h1"]
    [h0] = store.search_runs(RunQuery(handler_id="h0")).runs
    assert h0.steps == 3 and h0.tokens == 0
    [child] = store.search_runs(RunQuery(parent_id="h0")).runs
    assert child.row.handler_id == "h4" and child.relation == "fork" and child.fork_seq == 3
    assert store.workflow_names() == ["alpha", "beta"]
    with pytest.raises(ValueError, match="not a run list cursor"):
        store.search_runs(RunQuery(cursor="nonsense"))
    assert store.delete_handler("h0") and store.search_runs(RunQuery(handler_id="h0")).runs == []


def test_llm_spans_under_a_step_span_become_the_runs_llm_calls(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    _row(store, "h1", "alpha", "2030-01-01T00:00:00+00:00")
    provider = TracerProvider()
    capture = LlmCapture(store.add_llm_call, lambda run_id: "h1" if run_id == "r1" else None, {"gpt-test": (1.0, 2.0)})
    provider.add_span_processor(capture)
    tracer = provider.get_tracer("test")
    step_attributes = {"workflow.run_id": "r1", "workflow.step.name": "plan", "workflow.step.attempt": 2}
    with tracer.start_as_current_span("Agent.plan", attributes=step_attributes):
        with tracer.start_as_current_span("http"):
            with tracer.start_as_current_span("ChatCompletion", attributes={
                "openinference.span.kind": "LLM", "llm.model_name": "gpt-test", "llm.token_count.prompt": 1000,
                "llm.token_count.completion": 500, "llm.token_count.total": 1500,
                "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Weather?",
                "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "Sunny.",
            }):
                pass
        with tracer.start_as_current_span("not an llm", attributes={"openinference.span.kind": "TOOL"}):
            pass
    with tracer.start_as_current_span("other run", attributes={**step_attributes, "workflow.run_id": "elsewhere"}):
        with tracer.start_as_current_span("ChatCompletion", attributes={"openinference.span.kind": "LLM"}):
            pass
    [call] = store.llm_calls("h1")
    assert (call.step, call.attempt, call.model) == ("plan", 2, "gpt-test")
    assert (call.prompt_tokens, call.completion_tokens, call.total_tokens) == (1000, 500, 1500)
    assert call.cost == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert call.input_text == "user: Weather?" and call.output_text == "Sunny."
    [summary] = store.search_runs(RunQuery()).runs
    assert summary.tokens == 1500 and summary.llm_calls == 1
    assert capture._owners == {}, "every ended span is forgotten"


def test_indexed_search_and_capped_counts_answer_as_the_substring_scan_did(tmp_path: Path) -> None:
    check_search_at_small_scale(SqliteStore(tmp_path / "runs.db"))


def test_a_version_4_file_gets_its_search_index_when_opened(tmp_path: Path) -> None:
    import sqlite3

    from workflows_server.store.sqlite import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:4]:
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version = 4")
    db.execute("INSERT INTO handlers (handler_id, workflow_name, run_id, status, started_at, error) "
               "VALUES ('old', 'w', 'r', 'failed', '2025-01-01T00:00:00+00:00', 'Disk Quota exceeded')")
    db.execute("INSERT INTO run_index (handler_id, input_text) VALUES ('old', '{\"city\": \"Reykjavik\"}')")
    db.close()
    store = SqliteStore(path)
    assert store.migrated_from == 4 and SCHEMA_VERSION == 5
    for text in ("quota", "reykjavik", "OLD"):
        assert [r.row.handler_id for r in store.search_runs(RunQuery(text=text)).runs] == ["old"], text


class Ask(Event):
    question: str


class Reply(Event):
    ok: bool


class Approves(Workflow):
    @step
    async def review(self, ctx: Context, ev: StartEvent) -> StopEvent:
        reply = await ctx.wait_for_event(Reply, waiter_event=Ask(question=f"ship {ev.get('what')}?"), timeout=None)
        return StopEvent(result=reply.ok)


def test_a_wait_for_event_wait_carries_its_own_question_whatever_the_waiter_events_type(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    runtime = DurableRuntime(store)

    async def waiting_view() -> dict:
        handler = Approves(runtime=runtime, timeout=None).run(what="v2")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        try:
            while True:
                rows = store.list_handlers()  # the run's row is written as it starts
                view = run_view(rows[0], store.journal(rows[0].handler_id), store.snapshots(rows[0].handler_id),
                                store.stream(rows[0].handler_id), []) if rows else {"waits": []}
                if view["waits"] and view["waits"][0]["question"] is not None or loop.time() > deadline:
                    return view
                await asyncio.sleep(0.01)
        finally:
            await handler.cancel_run()

    view = asyncio.run(waiting_view())
    [wait] = view["waits"]
    assert view["status"] == "waiting"
    assert wait["step"] == "review" and wait["event_type"] == "Reply" and wait["ended_at"] is None
    assert wait["question"]["type"] == "Ask" and wait["question"]["value"] == {"question": "ship v2?"}
    assert view["steps"]["review"]["state"] == "waiting"
