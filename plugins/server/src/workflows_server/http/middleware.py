"""What wraps every request: a trace span, JSON errors (auth and the other guards: ``workflows_server.http.guard``).

Spans and metrics go through the OpenTelemetry API only: they reach whatever the
process configured (a plugin's ``register()``, ``WORKFLOWS_EXPORTERS``), the same
place the runs' own spans go. A run started by a request is a child of the request's
span; a run continued from the store stays in its original trace.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("workflows_server")

TRACER_NAME = "workflows_server"
METER_NAME = "workflows_server"


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 204:
        return Response(status_code=204)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def store_error(request: Request, exc: Exception) -> Response:
    """The store cannot be used now (disk full, read-only, connection lost): 503 with its error.

    Nothing the request asked for was done unless the answer says so; the server
    recovers by itself once the store writes again (``/health`` says when).
    """
    return JSONResponse(
        {"detail": f"the run store cannot be used now: {exc}; retry once GET /health answers 200"},
        status_code=503, headers={"Retry-After": "2"},
    )


def _path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class RequestSpans:
    """One SERVER span per request, named after its route (``POST /workflows/{name}/run``)."""

    def __init__(self, app: ASGIApp, route_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.route_of = route_of
        self.tracer = trace.get_tracer(TRACER_NAME)
        self.requests = metrics.get_meter(METER_NAME).create_counter(
            "workflows_server.requests", unit="{request}", description="HTTP requests, by route and status code"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        route = self.route_of(scope)
        status: dict[str, int] = {}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route, "url.path": _path(scope)},
        ) as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                code = status.get("code", 500)
                span.set_attribute("http.response.status_code", code)
                if code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                try:
                    self.requests.add(1, {"http.route": route, "http.response.status_code": code})
                except Exception:  # metrics must never break a request
                    pass


def route_namer(routes: list[Any]) -> Callable[[Scope], str]:
    """The route template a request matches (its path when none does), for span names."""
    from starlette.routing import Match

    def name(scope: Scope) -> str:
        path = _path(scope)
        at_root = {**scope, "path": path, "root_path": ""}
        for route in routes:
            match, _ = route.matches(at_root)
            if match is Match.FULL:
                return getattr(route, "path", path)
        return path

    return name


__all__ = ["RequestSpans", "http_error", "route_namer"]
