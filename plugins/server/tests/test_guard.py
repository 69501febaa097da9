"""The server, safe to expose: Host names, cross-site requests, security headers, request ids,
a real 500, /handlers paging, masked store URLs and the open-server warning (real server processes)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from typing import Any

import httpx
from server_helpers import APPS, free_port, wait_for

from workflows_server.http.guard.exposure import exposure_warning, mask_url


def test_every_response_carries_the_security_headers(make_server: Any) -> None:
    url = make_server(app="debugger_app.py").start().url
    for path in ("/", "/runs/x", "/debugger/assets/common.js", "/workflows", "/handlers/nope", "/health"):
        response = httpx.get(url + path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp.split(
            "script-src", 1)[1].split(";", 1)[0], (path, csp)
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
    # The pages load no inline script: every <script> has a src on this server.
    for page in ("/", "/runs/x", "/sessions/x"):
        html = httpx.get(url + page).text
        assert html.count("<script") == html.count('<script src="/debugger/assets/'), page
    refused = httpx.get(url + "/workflows", headers={"Host": "attacker.example"})
    assert refused.status_code == 400 and refused.headers["x-frame-options"] == "DENY"


def test_host_names_are_checked_against_dns_rebinding(make_server: Any) -> None:
    server = make_server().start(WORKFLOWS_SERVER_ALLOWED_HOSTS="workflows.internal,.example.org")
    url = server.url
    for host in ("localhost", f"localhost:{server.port}", "127.0.0.1", f"[::1]:{server.port}", "workflows.internal",
                 "example.org", "ci.example.org:443"):
        assert httpx.get(url + "/workflows", headers={"Host": host}).status_code == 200, host
    for host in ("attacker.example", "localhost.attacker.example", "example.org.attacker.example", "127.0.0.2"):
        response = httpx.get(url + "/workflows", headers={"Host": host})
        assert response.status_code == 400, host
        assert "WORKFLOWS_SERVER_ALLOWED_HOSTS" in response.json()["detail"], host
    # Load balancers probe /health by address.
    assert httpx.get(url + "/health", headers={"Host": "10.1.2.3"}).status_code == 200


def test_cross_site_requests_change_nothing_and_clients_without_origin_still_work(make_server: Any) -> None:
    server = make_server().start(WORKFLOWS_SERVER_ALLOWED_ORIGINS="https://ui.example.org")
    url = server.url
    waiting = httpx.post(f"{url}/workflows/ask/run-nowait", json={"start_event": {"tag": "w"}}).json()["handler_id"]
    wait_for(lambda: httpx.get(f"{url}/api/runs/{waiting}").json()["status"] == "waiting", "the run to wait")
    before = httpx.get(f"{url}/handlers").json()["handlers"]
    answer = json.dumps({"event": {"type": "HumanResponseEvent", "value": {"response": "csrf-approved"}}})
    actions = [
        ("/workflows/quick/run-nowait", json.dumps({"start_event": {}})),
        (f"/events/{waiting}", answer),
        (f"/handlers/{waiting}/cancel?purge=true", ""),
        (f"/api/runs/{waiting}/rerun", ""),
        (f"/api/runs/{waiting}/fork", json.dumps({"seq": 0})),
    ]
    foreign = [
        {"Origin": "http://attacker.example", "Content-Type": "text/plain"},
        {"Origin": f"http://localhost:{free_port()}", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
    ]
    for path, body in actions:
        for headers in foreign:
            response = httpx.post(url + path, content=body, headers=headers)
            assert response.status_code == 403, (path, headers, response.text)
            assert "refused" in response.json()["detail"]
        # No Origin, but a body an HTML form could send: 415.
        form = httpx.post(url + path, content=body or "x", headers={"Content-Type": "text/plain"})
        assert form.status_code == 415 and "application/json" in form.json()["detail"], (path, form.text)
    assert httpx.get(f"{url}/handlers").json()["handlers"] == before
    assert httpx.get(f"{url}/api/runs/{waiting}").json()["status"] == "waiting"
    # The server's own origin, a listed origin, and clients that send no Origin act.
    own = httpx.post(f"{url}/workflows/quick/run-nowait", json={}, headers={"Origin": url})
    listed = httpx.post(f"{url}/workflows/quick/run-nowait", json={}, headers={"Origin": "https://ui.example.org"})
    bare = httpx.post(f"{url}/workflows/quick/run-nowait", json={})
    assert [own.status_code, listed.status_code, bare.status_code] == [200, 200, 200]
    assert httpx.post(f"{url}/handlers/{waiting}/cancel").json() == {"status": "cancelled"}


def test_request_ids_are_echoed_logged_and_a_real_500_keeps_the_connection(make_server: Any) -> None:
    server = make_server(app="faulty_app.py").start()
    given = httpx.get(server.url + "/workflows", headers={"X-Request-ID": "trace-me.1"})
    assert given.headers["x-request-id"] == "trace-me.1"
    made = httpx.get(server.url + "/workflows", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert made != "bad id\twith spaces" and len(made) == 32
    assert httpx.get(server.url + "/workflows").headers["x-request-id"] != made

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/workflows/quick/events", headers={"X-Request-ID": "crash-1"})
    socket = connection.sock
    failed = connection.getresponse()
    body = json.loads(failed.read())
    assert failed.status == 500 and body == {"detail": "internal server error", "request_id": "crash-1"}
    assert failed.getheader("X-Request-ID") == "crash-1"
    connection.request("GET", "/workflows")
    again = connection.getresponse()
    assert again.status == 200 and json.loads(again.read())["workflows"]
    assert connection.sock is socket, "the connection was closed after the 500"
    connection.close()
    log = wait_for(lambda: server.text() if "secret-detail-4711" in server.text() else None, "the error's log line")
    assert isinstance(log, str)
    assert log.count("Traceback (most recent call last)") == 1 and log.count("RuntimeError: a bug with secret-detail-4711") == 1
    error_lines = [line for line in log.splitlines() if "unhandled error" in line]
    assert len(error_lines) == 1 and "crash-1" in error_lines[0]
    access = [line for line in log.splitlines() if "GET /workflows/quick/events" in line]
    assert access and all("[request crash-1]" in line for line in access), access


def test_handlers_are_paged_on_request_and_whole_by_default(make_server: Any) -> None:
    url = make_server().start().url
    ids = [httpx.post(f"{url}/workflows/quick/run-nowait", json={"handler_id": f"run-{i}"}).json()["handler_id"]
           for i in range(5)]
    whole = httpx.get(f"{url}/handlers").json()
    assert [h["handler_id"] for h in whole["handlers"]] == ids and whole["next_cursor"] is None
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{url}/handlers", params=params).json()
        assert len(page["handlers"]) <= 2
        seen += [h["handler_id"] for h in page["handlers"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    filtered = httpx.get(f"{url}/handlers", params={"limit": "10", "workflow_name": "two_steps"}).json()
    assert filtered["handlers"] == []
    for bad in ("0", "501", "ten"):
        response = httpx.get(f"{url}/handlers", params={"limit": bad})
        assert response.status_code == 400 and "limit" in response.json()["detail"] and "500" in response.json()["detail"]
    bad_cursor = httpx.get(f"{url}/handlers", params={"limit": "2", "cursor": "nonsense"})
    assert bad_cursor.status_code == 400 and "cursor" in bad_cursor.json()["detail"]


def test_store_passwords_are_masked_and_an_open_server_warns() -> None:
    assert mask_url("postgresql://app:s3cr3t@db:5432/runs") == "postgresql://app:***@db:5432/runs"
    assert mask_url("postgresql://app@db/runs?sslmode=require&password=s3cr3t") == \
        "postgresql://app@db/runs?sslmode=require&password=***"
    assert mask_url("sqlite:///.workflows/runs.db") == "sqlite:///.workflows/runs.db"
    assert exposure_warning("127.0.0.1", None) is None and exposure_warning("localhost", None) is None
    assert exposure_warning("0.0.0.0", "token") is None
    warning = exposure_warning("0.0.0.0", None)
    assert warning is not None and "WORKFLOWS_SERVER_TOKEN" in warning


def test_the_banner_masks_the_store_password_and_warns_when_listening_beyond_loopback(tmp_path: Any) -> None:
    # The store cannot be reached (port 9 on loopback): the process prints its banner and its warning first.
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows_server.cli", str(APPS / "durable_app.py"), "--host", "0.0.0.0",
         "--port", str(port), "--store", "postgresql://app:s3cr3t-pw@127.0.0.1:9/runs"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**_env(), "WORKFLOWS_TEST_LOG": str(tmp_path / "log")},
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    text = output.decode()
    assert "postgresql://app:***@127.0.0.1:9/runs" in text, text
    assert "s3cr3t-pw" not in text, text
    assert "WORKFLOWS_SERVER_TOKEN" in text and "0.0.0.0" in text, text


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOWS_")}


def test_handler_ids_of_the_documented_alphabet_are_accepted(make_server: Any) -> None:
    url = make_server().start().url
    for value in ("a", "A-Z.a_z:0-9", "x" * 128):
        response = httpx.post(f"{url}/workflows/quick/run-nowait", json={"handler_id": value})
        assert response.status_code == 200, response.text
        assert httpx.get(f"{url}/handlers/{value}").json()["handler_id"] == value


def test_a_security_header_the_app_set_is_kept_and_the_request_id_is_sent_once() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from workflows_server.http.guard.headers import SecurityHeaders
    from workflows_server.http.guard.requests import RequestIds

    async def framed(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN", "X-Request-ID": "the app's"})

    app = RequestIds(SecurityHeaders(Starlette(routes=[Route("/", framed)])))
    response = TestClient(app).get("/", headers={"X-Request-ID": "mine-1"})
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get_list("x-request-id") == ["mine-1"]
