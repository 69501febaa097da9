"""llama-agents-client 0.4.1, unchanged, drives a real server process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from llama_agents.client import WorkflowClient

from workflows.events import HumanResponseEvent, StartEvent


@pytest.fixture
def server(make_server: Any) -> Any:
    return make_server().start()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


def test_run_waits_for_the_result_and_run_nowait_returns_at_once(server: Any) -> None:
    async def go() -> None:
        client = WorkflowClient(base_url=server.url)
        assert (await client.is_healthy()).status == "healthy"
        assert "two_steps" in (await client.list_workflows()).workflows
        done = await client.run_workflow("two_steps", start_event=StartEvent(tag="a"))
        assert done.status == "completed" and done.result is not None
        assert done.result.value == {"result": "a:done:attempt0"} and done.result.type == "StopEvent"
        assert done.result.load_event(registry=[]).result == "a:done:attempt0"
        started = await client.run_workflow_nowait("two_steps", start_event=StartEvent(tag="b"))
        assert started.status == "running" and started.handler_id
        finished = await client.wait_for_handler(started.handler_id, timeout=20, poll_interval=0.02)
        assert finished.result is not None and finished.result.value["result"] == "b:done:attempt0"
        assert (await client.get_result(started.handler_id)).status == "completed"
        schema = await client.get_workflow_schema("two_steps")
        assert schema.start and schema.stop
        graph = await client.get_workflow_graph("two_steps")
        assert {n.id for n in graph.graph.nodes} >= {"first", "slow"}
        assert (await client.get_workflow_events_schema("two_steps")).events

    run(go())


def test_a_stream_reconnects_after_its_last_sequence_without_gaps_or_repeats(server: Any) -> None:
    async def go() -> None:
        client = WorkflowClient(base_url=server.url)
        started = await client.run_workflow_nowait("streams", start_event=StartEvent(count=5))
        everything = [(e.type, e.value) for e in [ev async for ev in client.get_workflow_events(started.handler_id)]]
        assert [t for t, _ in everything] == ["Progress"] * 5 + ["StopEvent"]
        first = client.get_workflow_events(started.handler_id)
        seen = []
        async for event in first:
            seen.append((event.type, event.value))
            if len(seen) == 2:
                break
        rest = client.get_workflow_events(started.handler_id, after_sequence=first.last_sequence)
        seen += [(e.type, e.value) async for e in rest]
        assert seen == everything
        # Finished and nothing left after the last event: 204, and the client's stream ends empty.
        assert [e async for e in client.get_workflow_events(started.handler_id, after_sequence=rest.last_sequence)] == []
        with_internal = [e.type async for e in client.get_workflow_events(started.handler_id, include_internal_events=True)]
        assert "StepStateChanged" in with_internal and with_internal[-1] == "StopEvent"

    run(go())


def test_ndjson_and_sse_frames_and_last_event_id(server: Any) -> None:
    started = httpx.post(f"{server.url}/workflows/streams/run-nowait", json={"start_event": {"count": 2}}).json()
    handler_id = started["handler_id"]
    with httpx.stream("GET", f"{server.url}/events/{handler_id}") as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        frames = [line for line in response.iter_lines() if line]
    assert [httpx.Response(200, content=f).json()["type"] for f in frames] == ["Progress", "Progress", "StopEvent"]
    with httpx.stream("GET", f"{server.url}/events/{handler_id}", params={"sse": "true"},
                      headers={"Last-Event-ID": "-1"}) as response:
        text = response.read().decode()
    ids = [int(line[3:]) for line in text.splitlines() if line.startswith("id:")]
    assert ids == sorted(ids) and len(ids) == 3
    with httpx.stream("GET", f"{server.url}/events/{handler_id}", params={"sse": "true"},
                      headers={"Last-Event-ID": str(ids[0])}) as response:
        again = [int(line[3:]) for line in response.read().decode().splitlines() if line.startswith("id:")]
    assert again == ids[1:]
    assert httpx.get(f"{server.url}/events/{handler_id}", params={"after_sequence": "now"}).status_code == 204


def test_quick_human_in_the_loop_round_trips_never_lose_the_answer(server: Any) -> None:
    async def one(client: WorkflowClient, index: int) -> str:
        started = await client.run_workflow_nowait("ask", start_event=StartEvent(tag=f"q{index}"))
        stream = client.get_workflow_events(started.handler_id)
        async for event in stream:
            if event.type == "InputRequiredEvent":
                # Answered the moment the question is seen: while the run is being let go of.
                await client.send_event(started.handler_id, HumanResponseEvent(response=f"a{index}"))
            if event.type == "StopEvent":
                return str(event.value["result"])
        raise AssertionError("the stream ended without the run's result")

    async def go() -> None:
        client = WorkflowClient(base_url=server.url)
        results = await asyncio.gather(*(one(client, i) for i in range(20)))
        assert results == [f"q{i}:a{i}" for i in range(20)]

    run(go())


def test_send_event_to_a_step_and_list_handlers_by_status_and_workflow(server: Any) -> None:
    async def go() -> None:
        client = WorkflowClient(base_url=server.url)
        done = await client.run_workflow("two_steps", start_event=StartEvent(tag="x"))
        waiting = await client.run_workflow_nowait("ask", start_event=StartEvent(tag="w"))
        async for event in client.get_workflow_events(waiting.handler_id):
            if event.type == "InputRequiredEvent":
                break
        running = await client.get_handlers(status=["running"])
        assert [h.handler_id for h in running.handlers] == [waiting.handler_id]
        completed = await client.get_handlers(status=["completed"], workflow_name=["two_steps"])
        assert [h.handler_id for h in completed.handlers] == [done.handler_id]
        await client.send_event(waiting.handler_id, HumanResponseEvent(response="ok"), step="ask")
        final = await client.wait_for_handler(waiting.handler_id, timeout=20, poll_interval=0.02)
        assert final.result is not None and final.result.value["result"] == "w:ok"

    run(go())


def test_cancel_a_waiting_run_then_read_it_then_purge_it(server: Any) -> None:
    async def go() -> None:
        client = WorkflowClient(base_url=server.url)
        waiting = await client.run_workflow_nowait("ask", start_event=StartEvent(tag="c"))
        async for event in client.get_workflow_events(waiting.handler_id):
            if event.type == "InputRequiredEvent":
                break
        assert (await client.cancel_handler(waiting.handler_id)).status == "cancelled"
        after = await client.get_handler(waiting.handler_id)  # the reference answers 500 here
        assert after.status == "cancelled" and after.completed_at
        types = [e.type async for e in client.get_workflow_events(waiting.handler_id)]
        assert types[-1] == "WorkflowCancelledEvent"
        live = await client.run_workflow_nowait("two_steps", start_event=StartEvent(tag="p"))
        await client.wait_for_handler(live.handler_id, timeout=20, poll_interval=0.02)
        assert (await client.cancel_handler(waiting.handler_id, purge=True)).status == "deleted"
        with pytest.raises(httpx.HTTPStatusError) as failed:
            await client.get_handler(waiting.handler_id)
        assert failed.value.response.status_code == 404
        assert (await client.get_handler(live.handler_id)).status == "completed"

    run(go())


def test_a_failed_run_reports_its_error(server: Any) -> None:
    async def go() -> None:
        client = WorkflowClient(base_url=server.url)
        started = await client.run_workflow_nowait("fails")
        final = await client.wait_for_handler(started.handler_id, timeout=20, poll_interval=0.02)
        assert final.status == "failed" and "the step failed on purpose" in (final.error or "")
        with pytest.raises(httpx.HTTPStatusError):
            await client.run_workflow("fails")  # as with the reference server: 500 for a run that failed

    run(go())
