"""Request ids, and the answer to an error nobody expected.

``X-Request-ID`` is taken from the request when it is sane (1-128 of ``A-Z a-z 0-9 . _
: -``) or made, echoed on the response, set on the request's span
(``REQUEST_ID_ATTRIBUTE``) and added to every log line written while the request is
handled (``RequestIdFilter``, installed by ``log_config`` on the server's log handlers).

An unexpected exception is logged once, with its traceback and the request id, and
answered ``{"detail": "internal server error", "request_id": ...}`` with 500: the
exception's text stays in the log, and as the answer is complete, the client's
keep-alive connection stays open (an exception that reached uvicorn would close it).
"""

from __future__ import annotations

import copy
import logging
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from workflows.runtime.ids import random_id

from workflows_server.http.guard.limits import ID_PATTERN

logger = logging.getLogger("workflows_server")

REQUEST_ID_HEADER = "X-Request-ID"
_RAW_REQUEST_ID = REQUEST_ID_HEADER.lower().encode("latin-1")
REQUEST_ID_ATTRIBUTE = "http.request.id"
_current: ContextVar[str | None] = ContextVar("workflows_server_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return _current.get()


class RequestIds:
    """Gives each HTTP request its id (see the module docstring) and answers unexpected errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = given if ID_PATTERN.fullmatch(given) else random_id()
        trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
        token = _current.set(request_id)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # The id replaces one the app set (MutableHeaders would do the same, at several times the cost).
                headers = [header for header in message.get("headers", ()) if header[0].lower() != _RAW_REQUEST_ID]
                headers.append((_RAW_REQUEST_ID, request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            logger.error("unhandled error on %s %s (request %s)", scope.get("method"), scope.get("path"), request_id,
                         exc_info=exc)
            if not started:
                response = JSONResponse({"detail": "internal server error", "request_id": request_id}, status_code=500)
                await response(scope, receive, sending)
            # Else the response was cut short: the server closes the connection, as it must.
        finally:
            _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Sets ``request_id`` (``-`` outside a request) and ``request_tag`` (`` [request <id>]``,
    empty outside a request) on every record, for log formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _current.get()
        record.request_id = request_id or "-"
        record.request_tag = f" [request {request_id}]" if request_id else ""
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration, with the request id on every line of a request and
    the ``workflows_server`` logger written next to uvicorn's."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": f"{__name__}.RequestIdFilter"}}
    for formatter in config["formatters"].values():
        formatter["fmt"] = formatter["fmt"] + "%(request_tag)s"
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id"]
    config["loggers"]["workflows_server"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


__all__ = ["REQUEST_ID_ATTRIBUTE", "REQUEST_ID_HEADER", "RequestIdFilter", "RequestIds", "current_request_id", "log_config"]
