"""The debugger's login: a page where a person pastes the server's token, and its endpoints.

| method, path | does |
| --- | --- |
| GET /login | the login page (with no token configured: to ``/``) |
| POST /login | body ``{"token": "..."}``: sets the session cookie (HttpOnly, SameSite=Strict, Secure over https); ``{"role": "full" or "read"}``; 401 for a wrong token |
| POST /logout | clears the session cookie (and revokes it in this process) |
| GET /api/session | ``{"auth": bool, "role": "full" or "read" or null}``: whether the server needs a login, and what this request may do |

The token travels in the body of one POST, never in a URL; see ``guard.sessions``.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from workflows_server.http.wire import read_json
from workflows_server.debugger.api import STATIC
from workflows_server.http.guard.sessions import COOKIE, Sessions, role_of, session_cookie


def _secure(request: Request) -> bool:
    # Behind a proxy that ends TLS, the proxy says so (uvicorn applies X-Forwarded-Proto from trusted proxies).
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def login_routes(sessions: Sessions | None, max_body_bytes: int) -> list[BaseRoute]:
    """The login page and endpoints; ``sessions`` is ``None`` when the server has no token."""

    async def page(request: Request) -> Response:
        if sessions is None:
            return RedirectResponse("/", 303)
        return FileResponse(STATIC / "login.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    async def login(request: Request) -> JSONResponse:
        if sessions is None:
            raise HTTPException(404, "this server has no token (WORKFLOWS_SERVER_TOKEN): there is nothing to log in to")
        body = await read_json(request, max_body_bytes)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise HTTPException(400, "request body must be a JSON object with 'token' (the server's token)")
        role = sessions.role_of_token(token)
        if role is None:
            raise HTTPException(401, "wrong token")
        response = JSONResponse({"role": role})
        response.set_cookie(COOKIE, sessions.issue(role), max_age=int(sessions.lifetime_seconds), path="/",
                            secure=_secure(request), httponly=True, samesite="strict")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def logout(request: Request) -> JSONResponse:
        cookie = session_cookie(request.headers)
        if sessions is not None and cookie:
            sessions.revoke(cookie)
        response = JSONResponse({"status": "logged out"})
        response.delete_cookie(COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict")
        return response

    async def session(request: Request) -> JSONResponse:
        if sessions is None:
            return JSONResponse({"auth": False, "role": "full"})
        state: dict[str, Any] = request.scope.get("state") or {}
        return JSONResponse({"auth": True, "role": role_of(request.scope) if "role" in state else None},
                            headers={"Cache-Control": "no-store"})

    return [
        Route("/login", page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/session", session, methods=["GET"]),
    ]


__all__ = ["login_routes"]
