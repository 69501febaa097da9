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
import psycopg
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
    """The run's whole stream, internal events included, as SSE (sequence, envelope) pairs, read until it ends."""
    out = []
    params = {"sse": "true", "after_sequence": after, "include_internal": "true"}
    with httpx.stream("GET", f"{server.url}/events/{handler_id}", params=params, timeout=30) as response:
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


def test_a_killed_replicas_runs_finish_on_the_others_without_rerunning_finished_steps(
    make_replica, gates: Path, log_file: Path, fresh_postgres_db: str
) -> None:
    # A holds 20 runs: 10 inside a step, 10 waiting for a human (kept in its memory).
    a = make_replica(WORKFLOWS_SERVER_IDLE_RELEASE_SECONDS="600")
    gated = {f"m{i}": start(a, "gated", f"m{i}") for i in range(10)}
    asked = {f"h{i}": start(a, "ask", f"h{i}") for i in range(10)}
    wait_for(lambda: sum(k.startswith("work-begin:") for k in log_of(log_file)) == 10, "every gated run mid-step")
    wait_for(lambda: sum(k.startswith("prepare:") for k in log_of(log_file)) == 10, "every question asked")
    wait_for(lambda: len(a.replica()["held"]) == 20, "A to hold all 20 runs")
    everything = {**gated, **asked}
    # Every event streamed before the crash, with its sequence number, as the database holds it.
    with psycopg.connect(fresh_postgres_db) as db:
        seen_before = {
            tag: db.execute(
                "SELECT sequence, envelope FROM stream WHERE handler_id = %s ORDER BY sequence", (handler_id,)
            ).fetchall()
            for tag, handler_id in everything.items()
        }
    assert all(len(rows) >= 1 for rows in seen_before.values())
    b = make_replica()
    c = make_replica()
    a.kill()
    # B and C take every run over once A's leases lapse; the interrupted steps run again.
    wait_for(lambda: sum(k.startswith("work-begin:") and k.endswith(":1") for k in log_of(log_file)) == 10,
             "every interrupted step to run again on B or C", timeout=30)
    wait_for(lambda: b.replica()["replica_counts"].get("takeovers", 0)
             + c.replica()["replica_counts"].get("takeovers", 0) == 20, "20 takeovers", timeout=30)
    (gates / "all").touch()
    for tag, handler_id in asked.items():
        replica = b if int(tag[1:]) % 2 else c
        response = httpx.post(f"{replica.url}/events/{handler_id}", timeout=30, json={
            "event": {"type": "HumanResponseEvent", "value": {"response": f"yes-{tag}"}}})
        assert response.status_code == 200, response.text
    for tag, handler_id in everything.items():
        wait_for(lambda h=handler_id: handler(b, h)["status"] == "completed", f"run {tag} to complete", timeout=30)
    counts = log_of(log_file)
    for tag, handler_id in everything.items():
        events = stream(c, handler_id)
        sequences = [s for s, _ in events]
        assert sequences == list(range(len(events))), f"{tag}: gaps or repeats in {sequences}"
        assert [(s, e) for s, e in events][: len(seen_before[tag])] == [
            (s, json.loads(e)) for s, e in seen_before[tag]
        ], f"{tag}: events streamed before the crash changed"
        result = handler(c, handler_id)["result"]["value"]["result"]
        if tag.startswith("m"):
            assert result == f"{tag}:done"
            assert counts[f"first:{tag}"] == 1, "a finished step ran again"
            assert counts[f"work-begin:{tag}:0"] == 1 and counts[f"work-begin:{tag}:1"] == 1
            assert counts[f"work-done:{tag}"] == 1
        else:
            assert result == f"{tag}:yes-{tag}"
            assert counts[f"prepare:{tag}"] == 1, "a finished step ran again"
            assert counts[f"answered:{tag}:yes-{tag}"] == 1
    assert a.pid not in pids_of(log_file, "work-done:") + pids_of(log_file, "answered:")
    assert not b.replica()["held"] and not c.replica()["held"]



def test_a_paused_replica_that_comes_back_cannot_write_over_the_new_owners_work(
    make_replica, gates: Path, log_file: Path
) -> None:
    a = make_replica()
    run = start(a, "gated", "s")
    wait_for(lambda: pids_of(log_file, "work-begin:s:0") == [a.pid], "the step to begin on A")
    b = make_replica()
    a.pause()  # SIGSTOP: A keeps its connections, stops renewing its lease
    try:
        wait_for(lambda: pids_of(log_file, "work-begin:s:1") == [b.pid], "B to take the run over", timeout=30)
        (gates / "s").touch()
        wait_for(lambda: handler(b, run)["status"] == "completed", "B to finish the run")
    finally:
        a.resume()
    # A wakes up inside its step, with the gate open: whatever it tries to write is refused.
    wait_for(lambda: not (v := a.replica())["live"] and not v["held"]
             and v["fencing_rejections"] + v["replica_counts"].get("leases_lost", 0) >= 1, "A to drop the run")
    data = handler(a, run)
    assert data["status"] == "completed" and data["result"]["value"]["result"] == "s:done"
    entries = httpx.get(f"{a.url}/api/handlers/{run}/journal", timeout=10).json()["entries"]
    kinds = [e["record"]["kind"] for e in entries]
    assert kinds.count("RunConcluded") == 1 and kinds.count("RunFinished") == 1
    finished = [e for e in entries if e["record"]["kind"] == "StepFinished" and e["record"]["step"] == "work"]
    assert len(finished) == 1, "one end of the step was written: the new owner's"
    # Each entry names the claim it was written under: A's (1) stop where B's (2) begin.
    fences = [e["fence"] for e in entries]
    assert fences == sorted(fences) and set(fences) == {1, 2}
    events = stream(b, run)
    assert [s for s, _ in events] == list(range(len(events)))
    assert [e["type"] for _, e in events].count("StopEvent") == 1
