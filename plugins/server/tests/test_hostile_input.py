"""Hostile input: each a 4xx naming the field and the limit, never a 500, and the client's
keep-alive connection still usable after it; nothing in the store changes (SQLite and PostgreSQL)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest


@dataclass(frozen=True)
class Hostile:
    what: str
    method: str
    path: str
    status: int
    words: tuple[str, ...]
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


RUN = "/workflows/quick/run-nowait"
CASES = [
    Hostile("JSON nested 100 000 deep", "POST", RUN, 400, ("nested", "100"), b"[" * 100_000 + b"]" * 100_000),
    Hostile("JSON nested deep in an event", "POST", "/events/known", 400, ("nested", "100"),
            b'{"event": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001),
    Hostile("a 60 000-character search", "GET", "/api/runs?q=" + "x" * 60_000, 400, ("'q'", "1000")),
    Hostile("a huge after_sequence", "GET", "/events/known?after_sequence=99999999999999999999999", 400,
            ("after_sequence", "9223372036854775807")),
    Hostile("a negative after_sequence", "GET", "/events/known?after_sequence=-5", 400, ("after_sequence", "-1")),
    Hostile("a huge Last-Event-ID", "GET", "/events/known?sse=true", 400, ("Last-Event-ID",),
            headers={"Last-Event-ID": "1" * 40}),
    Hostile("a huge run list limit", "GET", "/api/runs?limit=99999999999999999999", 400, ("limit", "500")),
    Hostile("a handlers limit of 0", "GET", "/handlers?limit=0", 400, ("limit", "500")),
    Hostile("a NUL in the search", "GET", "/api/runs?q=a%00b", 400, ("'q'", "NUL")),
    Hostile("a NUL in a filter", "GET", "/handlers?workflow_name=a%00", 400, ("'workflow_name'", "NUL")),
    Hostile("a NUL in a handler id (path)", "GET", "/handlers/a%00b", 400, ("path", "NUL")),
    Hostile("a NUL in a session id (path)", "GET", "/api/sessions/a%00b", 400, ("path", "NUL")),
    Hostile("a NUL in a run's input", "POST", RUN, 400, ("NUL",), _json({"start_event": {"q": "a\u0000b"}})),
    Hostile("a NUL in a handler id (body)", "POST", RUN, 400, ("NUL",), _json({"handler_id": "a\u0000b"})),
    Hostile("an unpaired surrogate", "POST", RUN, 400, ("surrogate",), b'{"start_event": {"q": "\\ud800"}}'),
    Hostile("a handler id with '/'", "POST", RUN, 400, ("'handler_id'", "128", "A-Z a-z 0-9 . _ : -"),
            _json({"handler_id": "a/b"})),
    Hostile("a handler id of 900 KB", "POST", RUN, 400, ("'handler_id'", "128"),
            _json({"handler_id": "x" * 900_000})),
    Hostile("a handler id that is a number", "POST", RUN, 400, ("'handler_id'", "int"), _json({"handler_id": 7})),
    Hostile("a malformed cursor", "GET", "/api/runs?cursor=nonsense", 400, ("cursor",)),
    Hostile("a foreign Host", "GET", "/handlers", 400, ("host", "attacker.example", "WORKFLOWS_SERVER_ALLOWED_HOSTS"),
            headers={"Host": "attacker.example"}),
    Hostile("a form post", "POST", RUN, 415, ("application/json",), b"start_event=1",
            {"Content-Type": "application/x-www-form-urlencoded"}),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: Any, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("fresh_postgres_db"))


def test_each_hostile_input_is_a_4xx_naming_the_problem_on_a_kept_connection(make_server: Any, store_url: str) -> None:
    server = make_server(store=store_url).start()
    done = httpx.post(f"{server.url}/workflows/quick/run", json={"handler_id": "known"}, timeout=30)
    assert done.status_code == 200, done.text
    before = httpx.get(f"{server.url}/handlers").json()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.connect()
    socket = connection.sock
    for case in CASES:
        headers = {"Content-Type": "application/json", **case.headers} if case.body is not None else dict(case.headers)
        connection.putrequest(case.method, case.path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(case.body or b"")))
        connection.endheaders(case.body)
        response = connection.getresponse()
        data = json.loads(response.read())
        assert response.status == case.status, (case.what, data)
        for word in case.words:
            assert word in data["detail"], (case.what, data["detail"])
        assert connection.sock is socket, f"the connection was closed after {case.what}"
    connection.close()
    assert httpx.get(f"{server.url}/handlers").json() == before
    assert "Traceback" not in server.text()
