"""``workflows-server view RUN.json``: exported runs, read-only, in the same debugger, with no store.

A run exported by a server (``GET /api/runs/{id}/export``, the run page's **Export**
button) is one JSON file: its row, journal, snapshots, stream, LLM calls, run-list
entry, graph and trace id. ``ExportedRuns`` holds such files in memory and answers the
read methods the debugger asks of a store (``get_handler``, ``journal``, ``snapshots``,
``stream``, ``llm_calls``, ``search_runs``, ``workflow_names``); ``ExportedApi`` is the
debugger's API over it. So the pages are the same pages, drawn from the same folding
of the journal (``debugger.view``), on a laptop with no database and no access to
production; nothing can act on the runs: ``/api/session`` says the viewer is read-only
(the pages show no action) and the action endpoints answer 403.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from workflows import Workflow
from workflows.events import Event
from workflows_server.debugger.api import EXPORT_FORMAT, STATIC, DebuggerApi
from workflows_server.debugger.push import Waiter
from workflows_server.durable import DurableRuntime
from workflows_server.http.guard import HostCheck, SecurityHeaders, allowed_hosts
from workflows_server.http.middleware import http_error
from workflows_server.runs import RunService
from workflows_server.settings import ServerSettings
from workflows_server.store import HandlerRow, JournalEntry, Snapshot, StreamEvent
from workflows_server.store.queries import LlmCall, RunPage, RunQuery, RunSummary, decode_cursor, encode_cursor


class ExportError(ValueError):
    """A file is not a run exported by the debugger (the message names the file and what is wrong)."""


class _Run:
    def __init__(self, data: dict[str, Any]) -> None:
        self.row = HandlerRow(**data["handler"])
        self.summary = RunSummary(row=self.row, **(data.get("index") or {}))
        self.journal = [JournalEntry(**e) for e in data.get("journal") or ()]
        self.snapshots = [Snapshot(**s) for s in data.get("snapshots") or ()]
        self.stream = [StreamEvent(**e) for e in data.get("stream") or ()]
        self.llm_calls = [LlmCall(**c) for c in data.get("llm_calls") or ()]
        self.graph: dict[str, Any] | None = data.get("graph")


def load_export(path: Path) -> dict[str, Any]:
    """The JSON of an exported run; ``ExportError`` naming the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ExportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: not a run exported by the workflow debugger (no \"format\": \"{EXPORT_FORMAT}\"); "
                          "export one with the run page's Export button or GET /api/runs/{id}/export")
    if data.get("version") != 1:
        raise ExportError(f"{path}: export version {data.get('version')!r} is not known to this server (it reads 1)")
    return data


class ExportedRuns:
    """Exported runs in memory, answering the debugger's store reads (see the module docstring)."""

    url = "exported runs (read-only)"

    def __init__(self, exports: Iterable[dict[str, Any]]) -> None:
        self.runs: dict[str, _Run] = {}
        for data in exports:
            try:
                run = _Run(data)
            except (KeyError, TypeError) as exc:
                raise ExportError(f"an exported run is incomplete or malformed ({exc})") from None
            self.runs[run.row.handler_id] = run

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> ExportedRuns:
        runs = cls([])
        for path in paths:
            data = load_export(path)
            try:
                runs.runs.update(cls([data]).runs)
            except ExportError as exc:
                raise ExportError(f"{path}: {exc}") from None
        return runs

    def graph(self, workflow_name: str) -> dict[str, Any] | None:
        return next((r.graph for r in self.runs.values() if r.row.workflow_name == workflow_name and r.graph), None)

    # ---- what the debugger reads of a store
    def get_handler(self, handler_id: str) -> HandlerRow | None:
        run = self.runs.get(handler_id)
        return run.row if run is not None else None

    def journal(self, handler_id: str, *, epoch: int | None = None) -> list[JournalEntry]:
        run = self.runs.get(handler_id)
        entries = run.journal if run is not None else []
        return [e for e in entries if epoch is None or e.epoch == epoch]

    def snapshots(self, handler_id: str) -> list[Snapshot]:
        run = self.runs.get(handler_id)
        return list(run.snapshots) if run is not None else []

    def stream(self, handler_id: str, *, after: int = -1, limit: int = 1000) -> list[StreamEvent]:
        run = self.runs.get(handler_id)
        return [e for e in (run.stream if run is not None else []) if e.sequence > after][:limit]

    def llm_calls(self, handler_id: str) -> list[LlmCall]:
        run = self.runs.get(handler_id)
        return list(run.llm_calls) if run is not None else []

    def workflow_names(self) -> list[str]:
        return sorted({r.row.workflow_name for r in self.runs.values()})

    def search_runs(self, query: RunQuery) -> RunPage:
        found = [r.summary for r in self.runs.values() if _matches(r, query)]
        found.sort(key=lambda s: (s.row.started_at, s.row.handler_id), reverse=not query.oldest_first)
        if query.cursor:
            mark = decode_cursor(query.cursor)
            later = (lambda k: k > mark) if query.oldest_first else (lambda k: k < mark)
            found_after = [s for s in found if later((s.row.started_at, s.row.handler_id))]
        else:
            found_after = found
        page = found_after[: query.limit]
        more = len(found_after) > query.limit
        last = page[-1].row if page else None
        return RunPage(runs=page, total=len(found),
                       next_cursor=encode_cursor(last.started_at, last.handler_id) if more and last else None)


def _matches(run: _Run, query: RunQuery) -> bool:
    row, summary = run.row, run.summary
    waiting = row.status == "running" and row.waiting_since is not None
    tests: list[Callable[[], bool]] = [
        lambda: not query.status or row.status in query.status,
        lambda: not query.workflow_name or row.workflow_name in query.workflow_name,
        lambda: query.session_id is None or summary.session_id == query.session_id,
        lambda: query.started_after is None or row.started_at >= query.started_after,
        lambda: query.started_before is None or row.started_at < query.started_before,
        lambda: query.waiting is None or waiting == query.waiting,
        lambda: query.parent_id is None or summary.parent_id == query.parent_id,
        lambda: query.handler_id is None or row.handler_id == query.handler_id,
        lambda: not query.text or query.text.lower() in " ".join(
            [summary.input_text or "", json.dumps(row.result or ""), row.error or ""]).lower(),
    ]
    return all(test() for test in tests)


class _Nothing:
    """The wake-ups of an exported run: none (it never changes); heartbeats only."""

    async def wait(self, timeout: float | None) -> bool:
        await asyncio.sleep(timeout if timeout is not None else 3600.0)
        return False


class _Viewer:
    """What ``ExportedApi`` is given in place of a server: settings, and no workflows, runtime or runs."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.workflows: dict[str, Workflow] = {}

    @property
    def runtime(self) -> DurableRuntime:
        raise RuntimeError("workflows-server view has no store and runs nothing")

    @property
    def runs(self) -> RunService:
        raise RuntimeError("workflows-server view has no store and runs nothing")

    def event_classes(self, name: str) -> list[type[Event]]:
        return []


class ExportedApi(DebuggerApi):
    """The debugger's read-only endpoints over ``ExportedRuns``."""

    def __init__(self, runs: ExportedRuns, settings: ServerSettings) -> None:
        super().__init__(_Viewer(settings))
        self.exported = runs

    @property
    def store(self) -> Any:
        return self.exported

    async def read(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # In memory, no I/O: answered on the loop.
        return fn(*args, **kwargs)

    def watch(self, keys: list[str]) -> Waiter:
        return _Nothing()

    def graph(self, name: str) -> dict[str, Any] | None:
        return self.exported.graph(name)

    def routes(self) -> list[BaseRoute]:
        async def session(request: Request) -> JSONResponse:
            return JSONResponse({"auth": False, "role": "read", "exported": True})

        async def workflows(request: Request) -> JSONResponse:
            return JSONResponse({"workflows": []})

        read = ("/api/runs/actions",) + tuple(f"/api/runs/{{handler_id}}/{action}" for action in ("rerun", "fork"))
        return [
            Route("/", self.page("index.html"), methods=["GET"]),
            Route("/runs/{handler_id}", self.page("run.html"), methods=["GET"]),
            Route("/sessions/{session_id}", self.page("session.html"), methods=["GET"]),
            Mount("/debugger/assets", app=StaticFiles(directory=STATIC), name="debugger-assets"),
            Route("/api/session", session, methods=["GET"]),
            Route("/workflows", workflows, methods=["GET"]),
            *[Route(path, _read_only, methods=["POST"]) for path in read],
            Route("/api/runs", self.list_runs, methods=["GET"]),
            Route("/api/runs/{handler_id}", self.get_run, methods=["GET"]),
            Route("/api/runs/{handler_id}/export", self.export, methods=["GET"]),
            Route("/api/sessions/{session_id}", self.session, methods=["GET"]),
            Route("/api/live/runs", self.live_runs, methods=["GET"]),
            Route("/api/live/runs/{handler_id}", self.live_run, methods=["GET"]),
            Route("/api/live/sessions/{session_id}", self.live_session, methods=["GET"]),
        ]


async def _read_only(request: Request) -> JSONResponse:
    raise HTTPException(403, "workflows-server view shows exported runs read-only: nothing can be done to them here")


def view_app(runs: ExportedRuns, settings: ServerSettings) -> Starlette:
    """The debugger over exported runs, as an ASGI app (the security headers and Host check of the server)."""
    api = ExportedApi(runs, settings)
    return Starlette(
        routes=api.routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(HostCheck, allowed=allowed_hosts(settings.host, settings.allowed_hosts)),
        ],
        exception_handlers={HTTPException: http_error},
    )


__all__ = ["ExportError", "ExportedApi", "ExportedRuns", "load_export", "view_app"]
