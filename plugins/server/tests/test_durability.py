"""kill -9 a real server mid-step and mid-wait; a new server on the same SQLite file finishes every run.

Steps log each execution to a file, so the tests count, across processes, that no
step whose end was written ran again, and that an interrupted step ran again with
the next attempt number.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from server_helpers import lines, wait_for
from llama_agents.client import WorkflowClient

from workflows.events import HumanResponseEvent, StartEvent

RUNS = 6


def _start(url: str, workflow: str, tag: str) -> str:
    response = httpx.post(f"{url}/workflows/{workflow}/run-nowait", json={"start_event": {"tag": tag}}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["handler_id"])


def test_runs_killed_mid_step_continue_after_a_restart_without_rerunning_finished_steps(make_server, log_file) -> None:
    server = make_server().start(WORKFLOWS_TEST_HANG="1")
    ids = {f"t{i}": _start(server.url, "two_steps", f"t{i}") for i in range(RUNS)}
    # Every run is inside its slow step (its first step finished) when the process dies.
    wait_for(lambda: sum(line.startswith("slow-begin:") for line in lines(log_file)) == RUNS, "every slow step to begin")
    server.kill()

    again = make_server(store=server.store).start(WORKFLOWS_TEST_HANG="1")

    async def results() -> dict[str, object]:
        client = WorkflowClient(base_url=again.url)
        done = await asyncio.gather(*(client.wait_for_handler(h, timeout=20, poll_interval=0.05) for h in ids.values()))
        return {d.handler_id: d for d in done}

    finished = asyncio.run(results())
    counts = Counter(lines(log_file))
    for tag, handler_id in ids.items():
        data = finished[handler_id]
        assert data.status == "completed", data
        assert data.result is not None and data.result.value["result"] == f"{tag}:done:attempt1"
        assert counts[f"first:{tag}"] == 1, "a finished step ran again"
        assert counts[f"slow-begin:{tag}:0"] == 1 and counts[f"slow-begin:{tag}:1"] == 1
        assert counts[f"slow-done:{tag}"] == 1


def test_runs_killed_while_waiting_for_a_human_finish_when_answered_after_a_restart(make_server, log_file) -> None:
    server = make_server().start()
    ids = {f"h{i}": _start(server.url, "ask", f"h{i}") for i in range(RUNS)}
    seen: dict[str, int] = {}

    async def questions() -> None:
        client = WorkflowClient(base_url=server.url)
        for tag, handler_id in ids.items():
            stream = client.get_workflow_events(handler_id)
            async for event in stream:
                if event.type == "InputRequiredEvent":
                    assert event.value["_data"]["prefix"] == f"ok {tag}?"  # a dynamic field
                    seen[tag] = int(stream.last_sequence)  # type: ignore[arg-type]
                    break
            await stream.aclose()

    asyncio.run(questions())
    # Let go of in memory: the store alone holds them.
    wait_for(
        lambda: all(httpx.get(f"{server.url}/handlers/{h}").json()["status"] == "running" for h in ids.values()),
        "the runs to be listed as running",
    )
    server.kill()
    again = make_server(store=server.store).start()

    async def answer() -> dict[str, object]:
        client = WorkflowClient(base_url=again.url)
        out = {}
        for tag, handler_id in ids.items():
            # The stream resumes after the question: the sequence numbers survived the crash.
            stream = client.get_workflow_events(handler_id, after_sequence=seen[tag])
            await client.send_event(handler_id, HumanResponseEvent(response=f"yes-{tag}"))
            async for event in stream:
                assert event.type != "InputRequiredEvent", "an event already streamed came again"
                if event.type == "StopEvent":
                    out[tag] = event.value["result"]
        return out

    results = asyncio.run(answer())
    assert results == {tag: f"{tag}:yes-{tag}" for tag in ids}
    counts = Counter(lines(log_file))
    for tag in ids:
        assert counts[f"prepare:{tag}"] == 1
        assert counts[f"answered:{tag}:yes-{tag}"] == 1


def test_a_run_started_by_the_client_survives_a_kill_right_after_it_was_accepted(make_server, log_file) -> None:
    server = make_server().start(WORKFLOWS_TEST_HANG="1")
    handler_id = _start(server.url, "two_steps", "k")
    wait_for(lambda: "slow-begin:k:0" in lines(log_file), "the slow step to begin")
    server.kill()
    again = make_server(store=server.store).start()

    async def result() -> object:
        client = WorkflowClient(base_url=again.url)
        return await client.wait_for_handler(handler_id, timeout=20, poll_interval=0.05)

    data = asyncio.run(result())
    assert data.status == "completed"  # type: ignore[attr-defined]
    journal = httpx.get(f"{again.url}/api/handlers/{handler_id}/journal").json()["entries"]
    kinds = [e["record"]["kind"] for e in journal]
    assert kinds[0] == "RunStarted" and "RunFinished" in kinds
    assert {e["epoch"] for e in journal} == {0, 1}, "the continued run writes a new epoch"
    starts = [e["record"] for e in journal if e["record"]["kind"] == "StepStarted" and e["record"]["step"] == "slow"]
    assert [s["attempt"] for s in starts] == [1, 2]
    _ = StartEvent
