"""A real Phoenix server for tests, and helpers that read it back through its REST API.

``PhoenixServer`` runs ``phoenix serve`` (from the ``arize-phoenix`` package) as a child
process bound to 127.0.0.1, on free HTTP and gRPC ports of its own and with its SQLite
database in a temporary working folder, so it never touches a developer's Phoenix. It
is stopped by its process id (terminate, then kill) and its folder is removed.

The session-scoped fixture ``phoenix_server`` starts one server for the whole test
session (a cold start takes about ten seconds); tests keep apart by sending to a
project of their own (``unique_project_name``).

Phoenix ingests spans in the background after answering the exporter, so readers poll:
``wait_for_spans`` asks for a project's spans until a condition holds or a deadline
passes, and fails with what it last saw.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from typing_extensions import Self

from support import processes

PHOENIX_VENV = Path(__file__).resolve().parents[2] / ".venv-phoenix"
"""Where ``scripts/setup.sh --test`` installs the Phoenix server (``tests/support/phoenix-server.txt``):
apart from the project's ``.venv``, which holds only ``arize-phoenix-otel``, as an
application's would. Importing ``phoenix.otel`` beside the server imports the whole
server (seconds of start-up and of interpreter teardown) and would skew what the tests
measure, such as how fast a traced program exits."""

STARTUP_DEADLINE_S = 120.0
"""Generous on purpose: a cold start runs migrations and imports a lot (about 10 s here)."""

INGEST_DEADLINE_S = 30.0
"""How long readers wait for spans to become visible after they were exported."""

Span = dict[str, Any]


def phoenix_command() -> list[str] | None:
    """Phoenix's command line: from ``PHOENIX_VENV``, else a ``phoenix`` on PATH;
    ``None`` without either."""
    installed = PHOENIX_VENV / "bin" / "phoenix"
    if installed.exists():
        return [str(installed)]
    found = shutil.which("phoenix")
    return [found] if found else None


@dataclass
class PhoenixServer:
    """One ``phoenix serve`` child process; use ``start()``/``stop()`` or ``with``."""

    http_port: int = field(default_factory=processes.free_port)
    grpc_port: int = field(default_factory=processes.free_port)
    working_dir: Path | None = None
    startup_seconds: float | None = None
    _process: subprocess.Popen[bytes] | None = None
    _owns_working_dir: bool = False

    @property
    def base_url(self) -> str:
        """The HTTP root: UI, REST API under ``/v1`` and the OTLP/HTTP receiver."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """The full OTLP/HTTP traces URL (protobuf only)."""
        return f"{self.base_url}/v1/traces"

    @property
    def otlp_grpc_endpoint(self) -> str:
        """The OTLP/gRPC receiver (plain text, use ``insecure=True``)."""
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        assert self.working_dir is not None
        return self.working_dir / "phoenix-server.log"

    def start(self) -> Self:
        """Start the server and return once ``/healthz`` answers, or raise with its log tail."""
        if self.working_dir is None:
            self.working_dir = Path(tempfile.mkdtemp(prefix="phoenix-test-"))
            self._owns_working_dir = True
        command = phoenix_command()
        if command is None:
            raise RuntimeError(
                f"the Phoenix server is not installed: scripts/setup.sh --test installs it in {PHOENIX_VENV}"
            )
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [*command, "serve"],
                env=self._environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            processes.wait_until_answering(self._process, f"{self.base_url}/healthz", timeout=STARTUP_DEADLINE_S,
                                           what="phoenix serve", log=lambda: f"last log lines:\n{self._log_tail()}")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop the process by its pid (terminate, then kill) and remove its folder."""
        process, self._process = self._process, None
        if process is not None:
            processes.stop(process)
        if self._owns_working_dir and self.working_dir is not None:
            shutil.rmtree(self.working_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _environment(self) -> dict[str, str]:
        # Drop whatever Phoenix settings the developer has, so the test server is isolated.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHOENIX_")}
        env.update(
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.http_port),
            PHOENIX_GRPC_PORT=str(self.grpc_port),
            PHOENIX_WORKING_DIR=str(self.working_dir),
            PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
            PHOENIX_TELEMETRY_ENABLED="false",
            PHOENIX_LOG_MIGRATIONS="false",
        )
        return env

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- REST readers ---------------------------------------------------------------------


def get_spans(base_url: str, project: str, **params: Any) -> list[Span]:
    """All spans of ``project`` matching the REST filters in ``params`` ([] if the project
    does not exist yet). Pages through ``next_cursor``."""
    spans: list[Span] = []
    query: dict[str, Any] = {"limit": 1000, **params}
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        while True:
            response = client.get(f"/v1/projects/{_quote(project)}/spans", params=query)
            if response.status_code == 404:
                return []
            response.raise_for_status()
            body = response.json()
            spans.extend(body["data"])
            if not body.get("next_cursor"):
                return spans
            query["cursor"] = body["next_cursor"]


def wait_for_spans(
    base_url: str,
    project: str,
    until: Callable[[list[Span]], bool] | int,
    *,
    deadline_s: float = INGEST_DEADLINE_S,
    **params: Any,
) -> list[Span]:
    """Poll ``project``'s spans until ``until(spans)`` holds (an int means "at least that
    many spans"), then return them; on timeout fail with a summary of what was there."""
    condition = (lambda spans: len(spans) >= until) if isinstance(until, int) else until
    end = time.monotonic() + deadline_s
    while True:
        spans = get_spans(base_url, project, **params)
        if condition(spans):
            return spans
        if time.monotonic() > end:
            seen = ", ".join(sorted(s["name"] for s in spans)) or "nothing"
            raise AssertionError(
                f"Phoenix project {project!r} did not reach the expected spans within "
                f"{deadline_s:.0f} s; it holds {len(spans)}: {seen}"
            )
        time.sleep(0.1)


def get_json(base_url: str, path: str, **params: Any) -> Any:
    """GET a REST path (``/v1/...``) and return its JSON ``data``; ``None`` on 404."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        response = client.get(path, params=params)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()["data"]


def wait_for_json(
    base_url: str,
    path: str,
    until: Callable[[Any], bool],
    *,
    deadline_s: float = INGEST_DEADLINE_S,
    **params: Any,
) -> Any:
    """Poll a REST path until ``until(data)`` holds; fail with the last answer otherwise."""
    end = time.monotonic() + deadline_s
    while True:
        data = get_json(base_url, path, **params)
        if data is not None and until(data):
            return data
        if time.monotonic() > end:
            raise AssertionError(f"GET {path} did not satisfy the condition in {deadline_s:.0f} s; last: {data!r}")
        time.sleep(0.1)


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def unique_project_name(prefix: str = "test") -> str:
    """A project name no other test uses (Phoenix names may not contain / ? #)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Flushable(Protocol):
    def force_flush(self, timeout_millis: int = ...) -> bool: ...


@dataclass
class PhoenixProject:
    """One Phoenix project a test sends spans to, and ways to read them back whole.

    ``provider`` is whatever exports to it (a tracer provider); it is flushed before
    every read, so a read waits only for Phoenix's own ingestion.
    """

    server: PhoenixServer
    name: str
    provider: Flushable

    def spans(self, count: int, **params: Any) -> list[Span]:
        """Flush, then wait until Phoenix holds at least ``count`` spans of the project,
        none pointing at a parent it does not hold (so trees are read whole)."""
        self.provider.force_flush()
        return wait_for_spans(self.server.base_url, self.name, _whole_trees(count), **params)

    def sessions(self, count: int) -> list[dict[str, Any]]:
        """The project's Phoenix sessions, once there are at least ``count`` of them."""
        return wait_for_json(
            self.server.base_url,
            f"/v1/projects/{_quote(self.name)}/sessions",
            lambda sessions: len(sessions) >= count,
        )

    def traces(self, count: int) -> list[dict[str, Any]]:
        """The project's traces (with token totals), once there are at least ``count``."""
        return wait_for_json(
            self.server.base_url,
            f"/v1/projects/{_quote(self.name)}/traces",
            lambda traces: len(traces) >= count,
        )


def _whole_trees(count: int) -> Callable[[list[Span]], bool]:
    def whole(spans: list[Span]) -> bool:
        ids = {s["context"]["span_id"] for s in spans}
        return len(spans) >= count and all(s["parent_id"] in ids for s in spans if s["parent_id"])

    return whole


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def phoenix_server() -> Iterator[PhoenixServer]:
    """One real Phoenix server for the whole test session, stopped by pid at the end."""
    server = PhoenixServer().start()
    try:
        yield server
    finally:
        server.stop()
