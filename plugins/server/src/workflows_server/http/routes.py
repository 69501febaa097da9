"""The HTTP API (the routes llama-agents-client 0.4.1 calls, and the ``/api/...`` additions).

Errors are ``{"detail": "..."}`` with the status that says what went wrong: 400 for
a body that cannot be read, 404 for an unknown workflow or handler, 409 for a request
the run's state refuses, 413 for a body over the limit, 422 for an event whose fields
do not validate, 503 while the store cannot write (``http.middleware.store_error``).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, AsyncIterator

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from workflows.context.serializers import PickleSerializer
from workflows.errors import ContextSerdeError, WorkflowRuntimeError
from workflows.representation import get_workflow_representation
from workflows_server.durable.envelopes import BadEvent, parse_event, parse_start_event, registry
from workflows_server.http.guard.limits import MAX_SEQUENCE, check_handler_id, integer_param
from workflows_server.http.wire import handler_data, read_json
from workflows_server.runs import RunConflict, RunNotFound
from workflows_server.store import STATUSES, TERMINAL, HandlerRow, StreamEvent
from workflows_server.store.queries import RunQuery
from workflows_server.store.sql import MAX_PAGE

if TYPE_CHECKING:
    from workflows_server.http.served import Served

_RUN_KEYS = frozenset({"start_event", "context", "handler_id", "kwargs"})


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise HTTPException(400, f"query parameter {name!r} must be true or false, got {raw!r}")


class Api:
    """The route handlers of one ``Served``."""

    def __init__(self, server: Served) -> None:
        self.server = server

    @property
    def runs(self) -> Any:
        return self.server.runs

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/workflows", self.list_workflows, methods=["GET"]),
            Route("/workflows/{name}/run", self.run, methods=["POST"]),
            Route("/workflows/{name}/run-nowait", self.run_nowait, methods=["POST"]),
            Route("/workflows/{name}/schema", self.schema, methods=["GET"]),
            Route("/workflows/{name}/representation", self.representation, methods=["GET"]),
            Route("/workflows/{name}/events", self.workflow_events, methods=["GET"]),
            Route("/events/{handler_id}", self.stream_events, methods=["GET"]),
            Route("/events/{handler_id}", self.post_event, methods=["POST"]),
            Route("/results/{handler_id}", self.result, methods=["GET"]),
            Route("/handlers", self.list_handlers, methods=["GET"]),
            Route("/handlers/{handler_id}", self.get_handler, methods=["GET"]),
            Route("/handlers/{handler_id}/cancel", self.cancel, methods=["POST"]),
            Route("/api/handlers/{handler_id}/journal", self.journal, methods=["GET"]),
            Route("/api/handlers/{handler_id}/snapshots", self.snapshots, methods=["GET"]),
            Route("/api/replica", self.replica, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ helpers
    def _workflow(self, request: Request) -> tuple[str, Any]:
        name = request.path_params["name"]
        workflow = self.server.workflows.get(name)
        if workflow is None:
            known = ", ".join(sorted(self.server.workflows)) or "none"
            raise HTTPException(404, f"workflow {name!r} not found; this server serves: {known}")
        return name, workflow

    async def _row(self, handler_id: str) -> HandlerRow:
        try:
            return await self.runs.get(handler_id)
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None

    # ------------------------------------------------------------------ workflows
    async def health(self, request: Request) -> JSONResponse:
        """200 while the store writes; 503 with the store's error while it cannot (a readiness probe:
        the process is alive and recovers by itself, see docs/deployment.md)."""
        runs = self.server.runs
        error = await runs.health.check()
        if error is None:
            return JSONResponse({"status": "healthy"})
        return JSONResponse(
            {"status": "unhealthy", "store": runs.store.url, "error": str(error), "since": runs.health.since,
             "stranded_runs": len(runs.live.stranded)},
            status_code=503,
        )

    async def list_workflows(self, request: Request) -> JSONResponse:
        return JSONResponse({"workflows": sorted(self.server.workflows)})

    async def schema(self, request: Request) -> JSONResponse:
        _, workflow = self._workflow(request)
        return JSONResponse({
            "start": workflow.start_event_class.model_json_schema(),
            "stop": workflow.stop_event_class.model_json_schema(),
        })

    async def representation(self, request: Request) -> JSONResponse:
        _, workflow = self._workflow(request)
        return JSONResponse({"graph": get_workflow_representation(workflow).model_dump(mode="json")})

    async def workflow_events(self, request: Request) -> JSONResponse:
        name, _ = self._workflow(request)
        schemas = []
        for cls in self.server.event_classes(name):
            try:
                schemas.append(cls.model_json_schema())
            except Exception as exc:  # a field type pydantic cannot describe: say so, keep the rest
                schemas.append({"title": cls.__name__, "description": f"no JSON schema: {exc}"})
        return JSONResponse({"events": schemas})

    # ------------------------------------------------------------------ runs
    async def _start(self, request: Request) -> HandlerRow:
        name, workflow = self._workflow(request)
        body = await read_json(request, self.server.settings.max_body_bytes)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise HTTPException(400, f"request body must be a JSON object with 'start_event', got {type(body).__name__}")
        unknown = set(body) - _RUN_KEYS
        if unknown:
            raise HTTPException(400, f"unknown field(s) in the request body: {', '.join(sorted(unknown))}; "
                                     f"expected: {', '.join(sorted(_RUN_KEYS))}")
        handler_id = body.get("handler_id")
        if handler_id is not None:
            check_handler_id(handler_id)
        context = body.get("context")
        if context is not None and not isinstance(context, dict):
            raise HTTPException(400, f"'context' must be an object (a Context.to_dict() payload), got {type(context).__name__}")
        if context and isinstance(workflow.serializer, PickleSerializer):
            # Unpickling runs whatever the data says: never for what arrives over HTTP.
            raise HTTPException(400, f"workflow {name!r} uses PickleSerializer, so this server does not accept a "
                                     "'context' over HTTP (pickle must only load trusted data); use JsonSerializer")
        raw_start = body.get("start_event", body.get("kwargs"))
        try:
            start = parse_start_event(raw_start, workflow.start_event_class, registry(self.server.event_classes(name)))
        except BadEvent as exc:
            raise HTTPException(exc.status, str(exc)) from None
        try:
            return await self.runs.start_run(name, start, handler_id=handler_id, context=context or None)
        except RunConflict as exc:
            raise HTTPException(409, str(exc)) from None
        except ContextSerdeError as exc:
            raise HTTPException(400, f"'context' cannot be read: {exc}") from None

    async def run_nowait(self, request: Request) -> JSONResponse:
        return JSONResponse(handler_data(await self._start(request)))

    async def run(self, request: Request) -> JSONResponse:
        row = await self._start(request)
        row = await self.runs.wait_finished(row.handler_id)
        data = handler_data(row)
        if row.status == "completed":
            return JSONResponse(data)
        # As the reference server does: a run that did not complete answers 500, with its data.
        data["detail"] = f"workflow run {row.status}" + (f": {row.error}" if row.error else "")
        return JSONResponse(data, status_code=500)

    async def result(self, request: Request) -> JSONResponse:
        row = await self._row(request.path_params["handler_id"])
        data = handler_data(row)
        result = row.result
        if result is not None:
            value = result.get("value") or {}
            data["result"] = value.get("result") if result.get("type") == "StopEvent" else value
        return JSONResponse(data, status_code=202 if row.status == "running" else 200)

    async def list_handlers(self, request: Request) -> JSONResponse:
        def values(name: str) -> list[str] | None:
            found = [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip()]
            return found or None

        status = values("status")
        bad = sorted(set(status or ()) - set(STATUSES))
        if bad:
            raise HTTPException(400, f"unknown status {', '.join(bad)}; expected any of: {', '.join(STATUSES)}")
        runs = self.server.runs
        raw_limit = request.query_params.get("limit")
        if raw_limit is None:  # what llama-agents-client asks for: every run
            rows = await runs.worker.read(runs.store.list_handlers, status=status, workflow_name=values("workflow_name"))
            return JSONResponse({"handlers": [handler_data(r) for r in rows], "next_cursor": None})
        query = RunQuery(status=status, workflow_name=values("workflow_name"), oldest_first=True,
                         limit=integer_param(raw_limit, "limit", 1, MAX_PAGE), cursor=request.query_params.get("cursor"))
        try:
            page = await runs.worker.read(runs.store.search_runs, query)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"handlers": [handler_data(s.row) for s in page.runs], "next_cursor": page.next_cursor})

    async def get_handler(self, request: Request) -> JSONResponse:
        return JSONResponse(handler_data(await self._row(request.path_params["handler_id"])))

    async def cancel(self, request: Request) -> JSONResponse:
        handler_id = request.path_params["handler_id"]
        purge = _flag(request, "purge", False)
        try:
            status = await self.runs.cancel(handler_id, purge=purge)
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except RunConflict as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"status": status})

    # ------------------------------------------------------------------ events
    async def post_event(self, request: Request) -> JSONResponse:
        handler_id = request.path_params["handler_id"]
        row = await self._row(handler_id)
        body = await read_json(request, self.server.settings.max_body_bytes)
        if not isinstance(body, dict) or body.get("event") in (None, "", {}):
            raise HTTPException(400, "request body must be a JSON object with 'event' (an event envelope) and optional 'step'")
        step = body.get("step")
        if step is not None and not isinstance(step, str):
            raise HTTPException(400, f"'step' must be a step name (a string), got {type(step).__name__}")
        if row.status in TERMINAL:
            raise HTTPException(409, f"handler {handler_id!r} has already {row.status}: it takes no more events")
        try:
            event = parse_event(body["event"], registry(self.server.event_classes(row.workflow_name)))
        except BadEvent as exc:
            raise HTTPException(exc.status, str(exc)) from None
        try:
            await self.runs.send(handler_id, event, step or None)
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except RunConflict as exc:
            raise HTTPException(409, str(exc)) from None
        except WorkflowRuntimeError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"status": "sent"})

    async def stream_events(self, request: Request) -> Response:
        handler_id = request.path_params["handler_id"]
        await self._row(handler_id)
        sse = _flag(request, "sse", False)
        include_internal = _flag(request, "include_internal", False)
        include_qualified_name = _flag(request, "include_qualified_name", True)
        runs = self.server.runs
        store, read = runs.store, runs.worker.read
        raw = request.query_params.get("after_sequence", "-1")
        if raw.strip().lower() == "now":
            after = await read(store.last_sequence, handler_id)
        else:
            after = integer_param(raw, "after_sequence (an integer or 'now')", -1, MAX_SEQUENCE)
        last_event_id = request.headers.get("last-event-id")
        if sse and last_event_id is not None:
            after = integer_param(last_event_id, "Last-Event-ID (a sequence number)", -1, MAX_SEQUENCE)
        # The row first: a run writes its last events before (or with) its final status, so
        # a status read first never hides events that the stream read then misses.
        row = await read(store.get_handler, handler_id)
        pending = await read(store.stream, handler_id, after=after, limit=1)
        if not pending and (row is None or row.status in TERMINAL or await self._ended(handler_id, after)):
            return Response(status_code=204)
        return StreamingResponse(
            self._frames(handler_id, after, sse=sse, include_internal=include_internal,
                         include_qualified_name=include_qualified_name),
            media_type="text/event-stream" if sse else "application/x-ndjson",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _ended(self, handler_id: str, after: int) -> bool:
        if after < 0:
            return False
        runs = self.server.runs
        seen = await runs.worker.read(runs.store.stream, handler_id, after=after - 1, limit=1)
        return bool(seen) and seen[0].sequence == after and seen[0].terminal

    async def _frames(
        self, handler_id: str, after: int, *, sse: bool, include_internal: bool, include_qualified_name: bool
    ) -> AsyncIterator[str]:
        runs = self.server.runs
        store, read = runs.store, runs.worker.read
        heartbeat = self.server.settings.sse_heartbeat_seconds if sse else 0
        while True:
            changed = runs.hub.future(handler_id)
            batch: list[StreamEvent] = await read(store.stream, handler_id, after=after)
            for item in batch:
                after = item.sequence
                if item.internal and not include_internal:
                    if item.terminal:
                        return
                    continue
                payload = item.envelope if include_qualified_name else {**item.envelope, "qualified_name": None}
                text = json.dumps(payload)
                yield f"id: {item.sequence}\ndata: {text}\n\n" if sse else text + "\n"
                if item.terminal:
                    return
            if batch:
                continue
            row = await read(store.get_handler, handler_id)
            if row is None or row.status in TERMINAL:
                # The run (on this replica or another) may have written its last events
                # between the stream read above and its status change: read once more.
                late = await read(store.stream, handler_id, after=after, limit=1) if row is not None else []
                if late:
                    continue
                return
            if heartbeat:
                deadline = asyncio.get_running_loop().time() + heartbeat
                while not changed.done():
                    left = deadline - asyncio.get_running_loop().time()
                    if left <= 0:
                        yield ": heartbeat\n\n"
                        break
                    if not await runs.changed(changed, timeout=left):
                        # On replicas: a poll. Read the store again if anything was written.
                        if await read(store.last_sequence, handler_id) > after:
                            break
            else:
                await runs.changed(changed)

    # ------------------------------------------------------------------ /api additions
    async def journal(self, request: Request) -> JSONResponse:
        handler_id = request.path_params["handler_id"]
        row = await self._row(handler_id)
        runs = self.server.runs
        entries = await runs.worker.read(runs.store.journal, handler_id)
        return JSONResponse({
            "handler": handler_data(row),
            "entries": [
                {"position": e.position, "epoch": e.epoch, "at": e.at, "record": e.record, "fence": e.fence}
                for e in entries
            ],
        })

    async def replica(self, request: Request) -> JSONResponse:
        """This process's share of the work: its runs, and on a shared store its claims and counters."""
        runs = self.server.runs
        data: dict[str, Any] = {
            "store": runs.store.url, "shared": runs.store.shared, "live": sorted(runs.live.handlers),
            "counts": dict(runs.counts),
            "store_writes": {"flushes": runs.worker.stats.flushes, "records": runs.worker.stats.records},
            "stranded": sorted(runs.live.stranded),
            "store_error": None if runs.health.error is None else str(runs.health.error),
            "store_failures": runs.health.failures,
        }
        replica = runs.replica
        if replica is not None:
            data.update({
                "replica_id": replica.owner,
                "held": replica.store.held(),
                "max_runs": replica.max_runs,
                "lease_seconds": replica.lease_seconds,
                "queue_depth": await runs.worker.read(replica.store.queue_depth),
                "fencing_rejections": replica.fencing_rejections,
                "replica_counts": dict(replica.counts),
            })
        return JSONResponse(data)

    async def snapshots(self, request: Request) -> JSONResponse:
        handler_id = request.path_params["handler_id"]
        await self._row(handler_id)
        runs = self.server.runs
        found = await runs.worker.read(runs.store.snapshots, handler_id)
        return JSONResponse({"snapshots": [{"epoch": s.epoch, "at": s.at, "payload": s.payload} for s in found]})


__all__ = ["Api", "handler_data", "read_json"]
