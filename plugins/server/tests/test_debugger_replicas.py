"""The debugger's pushed pages on replicas: a page served by one replica follows what another writes.

Two real server processes on one PostgreSQL database; the run lives in replica A's
memory, the page's stream (``/api/live/...``, read here as a browser's EventSource
would) is served by replica B.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Generator, Iterator

import httpx
from server_helpers import wait_for


def _messages(url: str) -> Generator[dict[str, Any], None, None]:
    """The data of each message of an SSE stream (bounded: a silent stream fails the read after 20 s)."""
    with httpx.stream("GET", url, timeout=httpx.Timeout(20.0)) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                yield json.loads(line[len("data: "):])


def _until(messages: Iterator[dict[str, Any]], done: Callable[[dict[str, Any]], bool], most: int = 20) -> dict[str, Any]:
    for _, data in zip(range(most), messages):
        if done(data):
            return data
    raise AssertionError(f"no message matched within {most} messages")


def test_a_page_on_one_replica_follows_runs_of_another(make_replica: Any) -> None:
    a = make_replica(WORKFLOWS_SERVER_IDLE_RELEASE_SECONDS="600")  # the waiting run stays in A's memory
    started = httpx.post(f"{a.url}/workflows/ask/run-nowait", json={"start_event": {"tag": "r"}}, timeout=10).json()
    asked = started["handler_id"]
    wait_for(lambda: asked in a.replica()["live"], "the run to be held by A")
    b = make_replica()  # started after: the run is A's

    # The run page, served by B: waiting, then completed when A delivers the answer.
    run = _messages(f"{b.url}/api/live/runs/{asked}")
    first = _until(run, lambda d: d["status"] == "waiting")
    assert first["question"]["value"]["prefix"] == "ok r?"
    assert asked in a.replica()["live"] and asked not in b.replica()["live"]
    response = httpx.post(f"{a.url}/events/{asked}", timeout=30,
                          json={"event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}})
    assert response.status_code == 200
    assert _until(run, lambda d: d["status"] == "completed")["result_value"] == "r:yes"
    run.close()

    # The run list, served by B: a run started on A appears in it.
    listing = _messages(f"{b.url}/api/live/runs?workflow=ask")
    assert [r["handler_id"] for r in next(listing)["runs"]] == [asked]
    newer = httpx.post(f"{a.url}/workflows/ask/run-nowait", json={"start_event": {"tag": "s"}}, timeout=10).json()
    seen = _until(listing, lambda d: d["runs"][0]["handler_id"] == newer["handler_id"])
    assert seen["total"] == 2
    listing.close()
