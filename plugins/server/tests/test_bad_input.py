"""Bad requests each get a 4xx naming the problem, and nothing in the store is lost."""

from __future__ import annotations

from typing import Any

import httpx


def test_each_bad_request_gets_a_clear_4xx_and_the_store_keeps_everything(make_server: Any) -> None:
    server = make_server().start(WORKFLOWS_SERVER_MAX_BODY_BYTES="4096")
    url = server.url
    done = httpx.post(f"{url}/workflows/two_steps/run", json={"start_event": {"tag": "keep"}}, timeout=20).json()
    waiting = httpx.post(f"{url}/workflows/ask/run-nowait", json={"start_event": {"tag": "w"}}).json()["handler_id"]
    def kept() -> list[tuple[object, ...]]:
        # updated_at moves when a waiting run is let go of or brought back: the rest must not.
        return [(h["handler_id"], h["workflow_name"], h["run_id"], h["status"], h["result"], h["error"], h["started_at"])
                for h in httpx.get(f"{url}/handlers").json()["handlers"]]

    before = kept()

    def check(response: httpx.Response, status: int, *words: str) -> None:
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        for word in words:
            assert word in detail, detail

    check(httpx.post(f"{url}/workflows/two_steps/run-nowait", content=b"{not json"), 400, "not valid JSON")
    check(httpx.post(f"{url}/workflows/nope/run-nowait", json={}), 404, "'nope'", "two_steps")
    check(httpx.post(f"{url}/workflows/two_steps/run-nowait", json={"start": {}}), 400, "unknown field", "start")
    check(httpx.post(f"{url}/workflows/two_steps/run-nowait", json={"start_event": 3}), 400, "start_event")
    check(httpx.post(f"{url}/events/{waiting}", json={"event": {"type": "Nope", "value": {}}}), 400, "'Nope'",
          "HumanResponseEvent")
    check(httpx.post(f"{url}/events/{waiting}", json={"event": {"type": "Halfway", "value": {"tag": [1]}}}), 422,
          "Halfway", "value.tag")
    check(httpx.post(f"{url}/events/{waiting}", json={"nothing": 1}), 400, "'event'")
    check(httpx.post(f"{url}/events/{waiting}", json={"event": {"type": "HumanResponseEvent", "value": {}},
                                                       "step": "nope"}), 400, "nope")
    check(httpx.post(f"{url}/events/{done['handler_id']}", json={"event": {"type": "HumanResponseEvent", "value": {}}}),
          409, "completed")
    check(httpx.post(f"{url}/events/unknown", json={"event": {"type": "HumanResponseEvent"}}), 404, "unknown")
    check(httpx.get(f"{url}/handlers/unknown"), 404, "unknown")
    check(httpx.get(f"{url}/handlers", params={"status": "sleeping"}), 400, "sleeping", "running")
    check(httpx.get(f"{url}/events/{waiting}", params={"after_sequence": "soon"}), 400, "after_sequence")
    huge = {"start_event": {"tag": "x" * 10_000}}
    check(httpx.post(f"{url}/workflows/two_steps/run-nowait", json=huge), 413, "4096", "WORKFLOWS_SERVER_MAX_BODY_BYTES")
    check(httpx.post(f"{url}/events/{waiting}", json={"event": {"type": "HumanResponseEvent", "value": {"r": "x" * 9000}}}),
          413, "limit")
    check(httpx.post(f"{url}/workflows/two_steps/run-nowait", json={"handler_id": waiting}), 409, "already running")

    assert kept() == before
    # The waiting run still takes its answer.
    answer = {"event": {"type": "HumanResponseEvent", "value": {"response": "fine"}}}
    assert httpx.post(f"{url}/events/{waiting}", json=answer).json() == {"status": "sent"}
    with httpx.stream("GET", f"{url}/events/{waiting}") as response:
        last = [line for line in response.iter_lines() if line][-1]
    assert httpx.Response(200, content=last).json()["value"]["result"] == "w:fine"


def test_a_token_guards_every_route_but_health_and_cors_is_off_unless_configured(make_server: Any) -> None:
    server = make_server().start(WORKFLOWS_SERVER_TOKEN="s3cret")
    assert httpx.get(f"{server.url}/health").status_code == 200
    missing = httpx.get(f"{server.url}/workflows")
    assert missing.status_code == 401 and "Authorization" in missing.json()["detail"]
    assert httpx.get(f"{server.url}/workflows", headers={"Authorization": "Bearer nope"}).status_code == 401
    good = httpx.get(f"{server.url}/workflows", headers={"Authorization": "Bearer s3cret", "Origin": "http://x.test"})
    assert good.status_code == 200 and "access-control-allow-origin" not in good.headers
    server.stop()
    open_server = make_server(store=server.store).start(WORKFLOWS_SERVER_CORS_ORIGINS="http://ui.test")
    allowed = httpx.get(f"{open_server.url}/workflows", headers={"Origin": "http://ui.test"})
    assert allowed.headers.get("access-control-allow-origin") == "http://ui.test"
    assert "access-control-allow-origin" not in httpx.get(
        f"{open_server.url}/workflows", headers={"Origin": "http://evil.test"}
    ).headers


def test_a_saved_context_is_resumed_once_and_a_second_resume_is_refused(make_server: Any) -> None:
    from server_helpers import wait_for

    server = make_server().start()
    url = server.url
    asking = httpx.post(f"{url}/workflows/ask/run-nowait", json={"start_event": {"tag": "q"}}).json()["handler_id"]

    def waiting_snapshot() -> dict[str, Any] | None:
        snapshots = httpx.get(f"{url}/api/handlers/{asking}/snapshots").json()["snapshots"]
        payload = snapshots[-1]["payload"]
        return payload if payload.get("is_running") and any(
            w["collected_waiters"] for w in payload["workers"].values()
        ) else None

    saved = wait_for(waiting_snapshot, "the asking run to be saved while it waits")
    first = httpx.post(f"{url}/workflows/ask/run-nowait", json={"context": saved})
    assert first.status_code == 200, first.text
    again = httpx.post(f"{url}/workflows/ask/run-nowait", json={"context": saved})
    assert again.status_code == 409, again.text
    assert "already resumed" in again.json()["detail"] and first.json()["handler_id"] in again.json()["detail"]
