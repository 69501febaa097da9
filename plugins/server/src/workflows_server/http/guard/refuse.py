"""The JSON answer middleware gives when it refuses a request, and the names of settings it cites."""

from __future__ import annotations

from typing import Mapping

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from workflows_server.settings import SETTINGS


async def refuse(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> None:
    """Answer ``{"detail": detail}`` with ``status``; the request goes no further."""
    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)


def route_path(scope: Scope) -> str:
    """The request's path inside the app (without the prefix it is mounted under)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def env(field: str) -> str:
    """The ``WORKFLOWS_SERVER_*`` variable of setting ``field`` (for messages that tell how to fix something)."""
    return next(setting.env for setting in SETTINGS if setting.field == field)


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (it may come from an attacker)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


__all__ = ["env", "refuse", "route_path", "shown"]
