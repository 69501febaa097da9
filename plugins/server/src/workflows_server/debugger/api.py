"""The debugger's pages and its ``/api/...`` endpoints.

Pages (static HTML shipped in ``static/``; their scripts read the endpoints below):
``/`` (runs), ``/runs/{handler_id}`` (one run), ``/sessions/{session_id}`` (a
conversation). Endpoints, all JSON, errors as ``{"detail": "..."}``:

| method, path | does |
| --- | --- |
| GET /api/runs | the run list: ``status`` (running, waiting, completed, failed, cancelled), ``workflow``, ``session``, ``since``/``until`` (ISO 8601), ``q`` (text in id, input, result, error; 3 characters or more), ``limit``, ``cursor``; ``total`` counts up to 10 000 (``total_capped``: more match) |
| GET /api/runs/{id} | the run page's data: the run, its graph, step attempts, back-offs, waits, state after each step with its JSON Patch, events, LLM calls, totals, links |
| POST /api/runs/{id}/rerun | a new run with the same start event; ``{"handler_id"}`` of it |
| POST /api/runs/{id}/fork | body ``{"seq": N, "state"?: {...}}``: a new run from the end of the step of work item N |
| GET /api/sessions/{session_id} | the runs sharing a Context, oldest first, with their input and result |
| GET /api/live/runs, /api/live/runs/{id}, /api/live/sessions/{session_id} | Server-Sent Events: the data of the endpoint above (same query parameters), sent each time it changes (``debugger.push``) |
| POST /api/runs/actions | body ``{"action": "cancel" or "rerun", "ids": [...]}`` or ``{"action", "filter": {...}}`` (the run list's query parameters), ``"dry_run"?: true``: the action on each run, one outcome per run (``debugger.bulk``) |
| GET /api/runs/{id}/export | the run as one JSON file (row, journal, snapshots, stream, LLM calls, index entry, graph, trace id), for ``workflows-server view`` |
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from workflows.events import HumanResponseEvent
from workflows.representation import get_workflow_representation, render_html
from workflows_server.http.wire import handler_data, read_json
from workflows_server.debugger.actions import ActionError, fork, rerun
from workflows_server.debugger.bulk import bulk_action
from workflows_server.debugger.filters import LIST_STATUSES, Params, first, query_params, run_query
from workflows_server.debugger.push import ANY_RUN, Shown, Waiter, push_response
from workflows_server.debugger.view import millis, run_view, trace_id_of, trace_link
from workflows_server.store import now_iso
from workflows_server.store.queries import RunQuery, RunSummary

if TYPE_CHECKING:
    from workflows_server.http.served import Served

STATIC = Path(__file__).parent / "static"
_SVG = re.compile(r"<svg\b.*</svg>", re.DOTALL)


EXPORT_FORMAT = "workflows-debugger-run"
"""The ``format`` of an exported run (``GET /api/runs/{id}/export``, read by ``workflows-server view``)."""
class HubWaiter:
    """Wake-ups of a pushed page: the server's hub for its keys, and on replicas a read every ``poll`` seconds."""

    def __init__(self, server: Served, keys: list[str]) -> None:
        runs = server.runs
        self.futures = [runs.hub.future(key) for key in (*keys, ANY_RUN)]
        self.poll = runs.placement.poll_seconds

    async def wait(self, timeout: float | None) -> bool:
        poll = self.poll
        limit = timeout if poll is None else (poll if timeout is None else min(timeout, poll))
        done, _ = await asyncio.wait(self.futures, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        # A poll that ran out is a wake-up too: the store is read again.
        return bool(done) or (poll is not None and (timeout is None or poll < timeout))


class DebuggerApi:
    """Route handlers of the debugger of one ``Served``."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self._graphs: dict[str, dict[str, Any]] = {}

    @property
    def store(self) -> Any:
        return self.server.runs.store

    async def read(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A store read, on the store's thread."""
        return await self.server.runs.worker.read(fn, *args, **kwargs)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.page("index.html"), methods=["GET"]),
            Route("/runs/{handler_id}", self.page("run.html"), methods=["GET"]),
            Route("/sessions/{session_id}", self.page("session.html"), methods=["GET"]),
            Mount("/debugger/assets", app=StaticFiles(directory=STATIC), name="debugger-assets"),
            Route("/api/runs", self.list_runs, methods=["GET"]),
            Route("/api/runs/actions", self.bulk, methods=["POST"]),
            Route("/api/runs/{handler_id}", self.get_run, methods=["GET"]),
            Route("/api/runs/{handler_id}/export", self.export, methods=["GET"]),
            Route("/api/runs/{handler_id}/rerun", self.rerun, methods=["POST"]),
            Route("/api/runs/{handler_id}/fork", self.fork, methods=["POST"]),
            Route("/api/sessions/{session_id}", self.session, methods=["GET"]),
            Route("/api/live/runs", self.live_runs, methods=["GET"]),
            Route("/api/live/runs/{handler_id}", self.live_run, methods=["GET"]),
            Route("/api/live/sessions/{session_id}", self.live_session, methods=["GET"]),
        ]

    def watch(self, keys: list[str]) -> Waiter:
        """Wake-ups for a pushed page that follows ``keys`` (see ``debugger.push``)."""
        return HubWaiter(self.server, keys)

    def push(self, request: Request, snapshot: Any) -> Any:
        return push_response(request, snapshot, self.watch, self.server.settings.sse_heartbeat_seconds)

    def page(self, name: str) -> Any:
        path = STATIC / name

        async def serve(request: Request) -> FileResponse:
            return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})

        return serve

    # ------------------------------------------------------------------ helpers
    def links(self, carrier: dict[str, str]) -> dict[str, Any]:
        settings = self.server.settings
        trace_id = trace_id_of(carrier)
        return {
            "trace_id": trace_id,
            "phoenix": trace_link(settings.phoenix_url, trace_id, "/redirects/traces/{trace_id}"),
            "langfuse": trace_link(settings.langfuse_url, trace_id, "/trace/{trace_id}"),
        }

    def summary(self, summary: RunSummary) -> dict[str, Any]:
        row = summary.row
        status = "waiting" if row.status == "running" and row.waiting_since is not None else row.status
        end = row.completed_at if row.status != "running" else None
        return {
            **handler_data(row),
            "status": status,
            "duration_ms": millis(row.started_at, end or datetime.now(timezone.utc).isoformat()),
            "steps": summary.steps,
            "tokens": summary.tokens,
            "cost": summary.cost,
            "llm_calls": summary.llm_calls,
            "session_id": summary.session_id,
            "input_preview": (summary.input_text or "")[:160],
            "parent_id": summary.parent_id,
            "relation": summary.relation,
            "fork_seq": summary.fork_seq,
        }

    def graph(self, name: str) -> dict[str, Any] | None:
        workflow = self.server.workflows.get(name)
        if workflow is None:
            return None
        if name not in self._graphs:
            # The core's drawing lays the graph out; the page colours its nodes live.
            found = _SVG.search(render_html(workflow))
            graph = get_workflow_representation(workflow)
            self._graphs[name] = {
                "svg": found.group(0) if found else "",
                "steps": [n.id for n in graph.nodes if n.node_type == "step"],
            }
        return self._graphs[name]

    def answer_type(self, workflow_name: str) -> str | None:
        """The qualified name of the ``HumanResponseEvent`` a served workflow takes (its questions' answer)."""
        workflow = self.server.workflows.get(workflow_name)
        if workflow is None:
            return None
        for cls in self.server.event_classes(workflow_name):
            if issubclass(cls, HumanResponseEvent) and any(
                spec.accepts(cls) for spec in workflow.step_specs.values()
            ):
                return f"{cls.__module__}.{cls.__name__}"
        return None

    def answer_form(self, workflow_name: str, event_type: str | None) -> dict[str, Any] | None:
        """The awaited event's class and fields, for the form that answers a waiting run."""
        if event_type is None or workflow_name not in self.server.workflows:
            return None
        short = event_type.rsplit(".", 1)[-1]
        for cls in self.server.event_classes(workflow_name):
            if cls.__name__ == short or f"{cls.__module__}.{cls.__name__}" == event_type:
                try:
                    schema = cls.model_json_schema()
                except Exception:
                    schema = {}
                properties = schema.get("properties") or {}
                required = set(schema.get("required") or ())
                fields = [
                    {"name": key, "type": prop.get("type", "string"), "required": key in required,
                     "title": prop.get("title", key), "default": prop.get("default")}
                    for key, prop in properties.items()
                ]
                if short == "HumanResponseEvent" and not any(f["name"] == "response" for f in fields):
                    fields.insert(0, {"name": "response", "type": "string", "required": True, "title": "Response",
                                      "default": None})
                return {"type": cls.__name__, "fields": fields}
        return {"type": short, "fields": []}

    async def row(self, handler_id: str) -> Any:
        row = await self.read(self.store.get_handler, handler_id)
        if row is None:
            raise HTTPException(404, f"run {handler_id!r} not found")
        return row

    # ------------------------------------------------------------------ endpoints
    async def list_data(self, params: Params) -> dict[str, Any]:
        raw_limit = first(params, "limit") or "25"
        try:
            limit = int(raw_limit)
            if not 1 <= limit <= 500:
                raise ValueError
        except ValueError:
            raise HTTPException(400, f"limit must be an integer from 1 to 500, got {raw_limit!r}") from None
        query = run_query(params, limit=limit, cursor=first(params, "cursor") or None)
        try:
            page = await self.read(self.store.search_runs, query)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        names = sorted({*self.server.workflows, *await self.read(self.store.workflow_names)})
        return {
            "runs": [self.summary(s) for s in page.runs],
            "total": page.total,
            "total_capped": page.total_capped,
            "next_cursor": page.next_cursor,
            "workflows": names,
            "statuses": list(LIST_STATUSES),
        }

    async def list_runs(self, request: Request) -> JSONResponse:
        return JSONResponse(await self.list_data(query_params(request)))

    async def live_runs(self, request: Request) -> Any:
        params = query_params(request)
        first = [await self.list_data(params)]  # a wrong filter is a 400 now, not a stream that ends

        async def snapshot() -> Shown:
            data = first.pop() if first else await self.list_data(params)
            return Shown(data=data, keys=[run["handler_id"] for run in data["runs"]])

        return self.push(request, snapshot)

    async def summary_of(self, handler_id: str) -> RunSummary | None:
        """The run's entry in the store's run list (its index entry and totals)."""
        page = await self.read(self.store.search_runs, RunQuery(handler_id=handler_id, limit=1))
        return page.runs[0] if page.runs else None

    async def get_run(self, request: Request) -> JSONResponse:
        return JSONResponse(await self.run_data(request.path_params["handler_id"]))

    async def live_run(self, request: Request) -> Any:
        handler_id = request.path_params["handler_id"]
        await self.row(handler_id)

        async def snapshot() -> Shown:
            try:
                return Shown(data=await self.run_data(handler_id), keys=[handler_id])
            except HTTPException as exc:
                return Shown(data={}, gone=str(exc.detail))

        return self.push(request, snapshot)

    async def run_data(self, handler_id: str) -> dict[str, Any]:
        row = await self.row(handler_id)
        store = self.store
        read = self.read
        view = run_view(
            row, await read(store.journal, handler_id), await read(store.snapshots, handler_id),
            await read(store.stream, handler_id, limit=100000), await read(store.llm_calls, handler_id),
            answers=self.answer_type(row.workflow_name),
        )
        summary = await self.summary_of(handler_id)
        children = (await read(store.search_runs, RunQuery(parent_id=handler_id, limit=50, oldest_first=True))).runs
        session_id = summary.session_id if summary else None
        session_runs = 0
        if session_id:
            session_runs = (await read(store.search_runs, RunQuery(session_id=session_id, limit=1))).total
        waits = [w for w in view["waits"] if w["ended_at"] is None]
        for wait in waits:
            wait["form"] = self.answer_form(row.workflow_name, wait["event_qualified_name"])
        return {
            "handler": handler_data(row),
            **view,
            "workflow_name": row.workflow_name,
            "served": row.workflow_name in self.server.workflows,
            "graph": self.graph(row.workflow_name),
            "links": self.links(row.carrier),
            "session_id": session_id,
            "session_runs": session_runs,
            "parent": None if summary is None or not summary.parent_id else {
                "handler_id": summary.parent_id, "relation": summary.relation, "fork_seq": summary.fork_seq,
            },
            "children": [{"handler_id": c.row.handler_id, "relation": c.relation, "fork_seq": c.fork_seq,
                          "status": c.row.status, "started_at": c.row.started_at} for c in children],
            "answer_form": (waits[-1]["form"] if waits else self.answer_form(row.workflow_name, None))
            if view["status"] == "waiting" else None,
        }

    async def rerun(self, request: Request) -> JSONResponse:
        row = await self.row(request.path_params["handler_id"])
        try:
            new = await rerun(self.server, row)
        except ActionError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return JSONResponse({"handler_id": new.handler_id, "relation": "rerun"})

    async def fork(self, request: Request) -> JSONResponse:
        row = await self.row(request.path_params["handler_id"])
        body = await read_json(request, self.server.settings.max_body_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("seq"), int) or isinstance(body.get("seq"), bool):
            raise HTTPException(400, "request body must be a JSON object with 'seq' (the work item of a finished step, "
                                     "an integer) and optional 'state' (the whole state to continue with)")
        try:
            new = await fork(self.server, row, body["seq"], body.get("state"))
        except ActionError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return JSONResponse({"handler_id": new.handler_id, "relation": "fork", "fork_seq": body["seq"]})

    async def session_data(self, session_id: str) -> dict[str, Any]:
        page = await self.read(self.store.search_runs, RunQuery(session_id=session_id, limit=500, oldest_first=True))
        if not page.runs:
            raise HTTPException(404, f"no runs of session {session_id!r}")
        turns = []
        for summary in page.runs:
            row = summary.row
            view = run_view(
                row, await self.read(self.store.journal, row.handler_id),
                await self.read(self.store.snapshots, row.handler_id), [], [],
            )
            turns.append({**self.summary(summary), "input": view["input"], "result_value": view["result_value"],
                          "error_text": row.error})
        return {"session_id": session_id, "runs": turns, "total": page.total}

    async def session(self, request: Request) -> JSONResponse:
        return JSONResponse(await self.session_data(request.path_params["session_id"]))

    async def live_session(self, request: Request) -> Any:
        session_id = request.path_params["session_id"]
        first = [await self.session_data(session_id)]

        async def snapshot() -> Shown:
            data = first.pop() if first else await self.session_data(session_id)
            return Shown(data=data, keys=[run["handler_id"] for run in data["runs"]])

        return self.push(request, snapshot)

    # ------------------------------------------------------------------ many runs, and export
    async def bulk(self, request: Request) -> JSONResponse:
        body = await read_json(request, self.server.settings.max_body_bytes)
        return JSONResponse(await bulk_action(self, body))

    async def export_data(self, handler_id: str) -> dict[str, Any]:
        """The run as one JSON document: everything the run page reads, for ``workflows-server view``."""
        row = await self.row(handler_id)
        summary = await self.summary_of(handler_id)
        index = {} if summary is None else {
            key: value for key, value in dataclasses.asdict(summary).items() if key != "row"
        }
        return {
            "format": EXPORT_FORMAT,
            "version": 1,
            "exported_at": now_iso(),
            "trace_id": trace_id_of(row.carrier),
            "handler": dataclasses.asdict(row),
            "index": index,
            "journal": [dataclasses.asdict(e) for e in await self.read(self.store.journal, handler_id)],
            "snapshots": [dataclasses.asdict(s) for s in await self.read(self.store.snapshots, handler_id)],
            "stream": [dataclasses.asdict(e) for e in await self.read(self.store.stream, handler_id, limit=10**9)],
            "llm_calls": [dataclasses.asdict(c) for c in await self.read(self.store.llm_calls, handler_id)],
            "graph": self.graph(row.workflow_name),
        }

    async def export(self, request: Request) -> JSONResponse:
        handler_id = request.path_params["handler_id"]
        data = await self.export_data(handler_id)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", handler_id)
        return JSONResponse(data, headers={"Content-Disposition": f'attachment; filename="run-{safe}.json"',
                                           "Cache-Control": "no-store"})


__all__ = ["DebuggerApi", "EXPORT_FORMAT", "HubWaiter", "STATIC"]
