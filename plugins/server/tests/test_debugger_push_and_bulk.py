"""The debugger's stream and bulk endpoints over HTTP, against a real server process: a stream
resumed with the id of what the page has sends nothing until something changes; a bulk
action that asks too much or names its runs wrongly is refused before any run is touched."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
from debugger_helpers import run_status, waiting_run


def _frames(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Each SSE frame of a response as its fields (a comment frame as ``{"comment": ...}``)."""
    frame: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            frame["comment"] = line[1:].strip()
        else:
            name, _, value = line.partition(": ")
            frame[name] = value


def test_a_resumed_stream_sends_nothing_until_a_change(make_server: Any) -> None:
    server = make_server(app="debugger_app.py").start(WORKFLOWS_SERVER_SSE_HEARTBEAT_SECONDS="0.2")
    url = server.url
    handler_id = waiting_run(url)
    stream = f"{url}/api/live/runs/{handler_id}"
    with httpx.stream("GET", stream, timeout=20) as response:
        frames = _frames(response)
        assert next(frames) == {"retry": "1000"}
        first = next(frames)
        assert '"status": "waiting"' in first["data"]
    # Back with the id of what it has: heartbeats only, then the change.
    with httpx.stream("GET", stream, headers={"Last-Event-ID": first["id"]}, timeout=20) as response:
        frames = _frames(response)
        assert next(frames) == {"retry": "1000"}
        assert next(frames) == {"comment": "heartbeat"}
        sent = httpx.post(f"{url}/events/{handler_id}", timeout=20,
                          json={"event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}})
        assert sent.status_code == 200
        changed = next(f for f in frames if "data" in f)
        assert changed["id"] != first["id"] and '"status": "completed"' in changed["data"]
    # The query string's id does the same, for a page that opens a new stream itself.
    with httpx.stream("GET", f"{stream}?last_event_id={changed['id']}", timeout=20) as response:
        frames = _frames(response)
        assert [next(frames), next(frames)] == [{"retry": "1000"}, {"comment": "heartbeat"}]
    bad = httpx.get(f"{url}/api/live/runs?status=sleeping", timeout=10)
    assert bad.status_code == 400 and "unknown status sleeping" in bad.json()["detail"]
    assert httpx.get(f"{url}/api/live/runs/nope", timeout=10).status_code == 404


def test_a_bulk_action_that_asks_too_much_or_wrongly_touches_no_run(make_server: Any) -> None:
    server = make_server(app="debugger_app.py").start(WORKFLOWS_SERVER_BULK_MAX_RUNS="2")
    url = server.url
    runs = [waiting_run(url) for _ in range(3)]

    def refused(body: Any, says: str) -> None:
        response = httpx.post(f"{url}/api/runs/actions", json=body, timeout=10)
        assert response.status_code == 400 and says in response.json()["detail"], (body, response.text)

    refused({"action": "cancel", "filter": {"status": "waiting"}}, "more than 2 runs match this filter")
    refused({"action": "cancel", "ids": runs}, "names 3 runs, more than 2")
    refused({"action": "purge", "ids": runs[:1]}, "'action' (one of: cancel, rerun)")
    refused({"action": "cancel", "ids": runs[:1], "filter": {}}, "either 'ids' or 'filter'")
    refused({"action": "cancel", "ids": []}, "non-empty list of run")
    refused({"action": "cancel", "filter": {"colour": "red"}}, "unknown filter(s) colour")
    refused({"action": "cancel", "filter": {"since": "yesterday"}}, "'since' must be an ISO 8601 time")
    refused({"action": "cancel", "ids": ["bad id!"]}, "ids[]")
    assert [run_status(url, h) for h in runs] == ["waiting"] * 3
    # Within the limit: each run's outcome; an unknown id is reported, not fatal.
    response = httpx.post(f"{url}/api/runs/actions", json={"action": "cancel", "ids": [runs[0], "gone-run"]}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["counts"] == {"done": 1, "skipped": 1}
    assert {r["handler_id"]: r["detail"] for r in body["results"]} == {runs[0]: "cancelled", "gone-run": "no such run"}
    assert [run_status(url, h) for h in runs] == ["cancelled", "waiting", "waiting"]
