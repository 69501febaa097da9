"""Two and three real server processes on one real PostgreSQL: any replica answers any request,
work goes to replicas with room, and a run is never lost or run twice when a replica dies.

Steps log each execution with the pid of the replica that ran it (apps/replica_app.py),
so the tests count, across processes, what ran where and how many times.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
from llama_agents.client import WorkflowClient
from server_helpers import ServerProcess, lines, wait_for

from workflows.events import HumanResponseEvent


def start(server: ServerProcess, workflow: str, tag: str) -> str:
    response = httpx.post(f"{server.url}/workflows/{workflow}/run-nowait", json={"start_event": {"tag": tag}}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["handler_id"])


def handler(server: ServerProcess, handler_id: str) -> dict:
    return httpx.get(f"{server.url}/handlers/{handler_id}", timeout=10).json()


def stream(server: ServerProcess, handler_id: str, after: int = -1) -> list[tuple[int, dict]]:
    """The run's whole stream as SSE (sequence, envelope) pairs, read until it ends."""
    out = []
    with httpx.stream("GET", f"{server.url}/events/{handler_id}",
                      params={"sse": "true", "after_sequence": after}, timeout=30) as response:
        sequence = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                sequence = int(line[4:])
            elif line.startswith("data: "):
                assert sequence is not None
                out.append((sequence, json.loads(line[6:])))
    return out


def log_of(log_file: Path) -> Counter[str]:
    """Each logged step execution, without the pid that ran it."""
    return Counter(line.rsplit(":", 1)[0] for line in lines(log_file))


def pids_of(log_file: Path, prefix: str) -> list[int]:
    return [int(line.rsplit(":", 1)[1]) for line in lines(log_file) if line.startswith(prefix)]


def test_a_client_streams_and_answers_from_another_replica_than_the_one_running(
    make_replica, gates: Path, log_file: Path
) -> None:
    a = make_replica(WORKFLOWS_SERVER_IDLE_RELEASE_SECONDS="600")  # keeps waiting runs in memory
    gated = start(a, "gated", "g")
    asked = start(a, "ask", "q")
    wait_for(lambda: "work-begin:g:0" in log_of(log_file) and "prepare:q" in log_of(log_file), "both runs on A")
    b = make_replica()
    assert set(a.replica()["live"]) == {gated, asked} and b.replica()["live"] == []

    async def follow_from_b() -> list[str]:
        client = WorkflowClient(base_url=b.url)
        seen = []
        async for event in client.get_workflow_events(gated):
            seen.append(event.type)
            if event.type == "Progress" and len(seen) == 1:
                (gates / "g").touch()  # A finishes the step only now: its events reach B live
        return seen

    assert asyncio.run(follow_from_b()) == ["Progress", "Progress", "StopEvent"]
    assert pids_of(log_file, "work-done:g") == [a.pid]

    # The answer is posted to B; the run waits in A's memory, and A delivers it.
    response = httpx.post(f"{b.url}/events/{asked}", timeout=30, json={
        "event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}})
    assert response.status_code == 200 and response.json() == {"status": "sent"}
    done = wait_for(lambda: (d := handler(b, asked))["status"] == "completed" and d, "the answered run to complete")
    assert done["result"]["value"]["result"] == "q:yes"  # type: ignore[index]
    assert pids_of(log_file, "answered:q") == [a.pid]
    assert a.replica()["replica_counts"].get("delivered") == 1


def test_a_run_waiting_in_the_store_is_continued_by_whichever_replica_gets_its_answer(
    make_replica, log_file: Path
) -> None:
    a = make_replica()  # lets go of waiting runs at once: they are held by no replica
    b = make_replica()
    asked = start(a, "ask", "w")
    wait_for(lambda: (r := handler(a, asked))["status"] == "running" and "prepare:w" in log_of(log_file) and r,
             "the question")
    wait_for(lambda: not a.replica()["held"] and not b.replica()["held"], "the waiting run to be held by the store alone")

    async def answer_on_b() -> object:
        client = WorkflowClient(base_url=b.url)
        await client.send_event(asked, HumanResponseEvent(response="sure"))
        return (await client.wait_for_handler(asked, timeout=30, poll_interval=0.05)).result

    result = asyncio.run(answer_on_b())
    assert result is not None and result.value["result"] == "w:sure"  # type: ignore[attr-defined]
    assert log_of(log_file)["prepare:w"] == 1 and log_of(log_file)["answered:w:sure"] == 1
    # Cancelling works from any replica too, and a finished run refuses events everywhere.
    again = start(b, "ask", "c")
    wait_for(lambda: "prepare:c" in log_of(log_file), "the second question")
    assert httpx.post(f"{a.url}/handlers/{again}/cancel", timeout=30).json() == {"status": "cancelled"}
    assert handler(b, again)["status"] == "cancelled"
    late = httpx.post(f"{a.url}/events/{again}", timeout=10, json={
        "event": {"type": "HumanResponseEvent", "value": {"response": "late"}}})
    assert late.status_code == 409


def test_new_runs_wait_in_the_database_for_a_replica_with_room(make_replica, gates: Path, log_file: Path) -> None:
    a = make_replica(WORKFLOWS_SERVER_MAX_RUNS="2")
    b = make_replica(WORKFLOWS_SERVER_MAX_RUNS="2")
    ids = [start(a, "gated", f"d{i}") for i in range(7)]
    wait_for(lambda: sum(k.startswith("work-begin:") for k in log_of(log_file)) == 4, "four runs working")
    views = [a.replica(), b.replica()]
    assert [len(v["held"]) for v in views] == [2, 2], views
    assert views[0]["queue_depth"] == 3
    (gates / "all").touch()
    for handler_id in ids:
        wait_for(lambda h=handler_id: handler(b, h)["status"] == "completed", f"run {handler_id} to complete")
    counts = log_of(log_file)
    assert all(counts[f"work-done:d{i}"] == 1 for i in range(7))
    assert set(pids_of(log_file, "work-done:")) == {a.pid, b.pid}, "both replicas took work"
    assert a.replica()["queue_depth"] == 0
