"""Who may do what: bearer tokens for API clients, a session cookie for people in the debugger.

With ``WORKFLOWS_SERVER_TOKEN`` set, every request but ``PUBLIC_PATHS`` (and the
debugger's static files) needs either ``Authorization: Bearer <token>`` or the session
cookie the login page sets. ``WORKFLOWS_SERVER_READ_TOKEN`` grants reading only: a
request that would change something is refused with 403.

The session cookie is signed, not stored: ``role.expiry.nonce.signature``, the
signature an HMAC-SHA256 under a key derived from both tokens, so every replica with
the same tokens accepts it, and changing a token ends every session. Logging out
clears the cookie and revokes its nonce in this process. Tokens are compared in
constant time and never put in a URL or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from http.cookies import SimpleCookie
from typing import Literal
from urllib.parse import urlencode

from starlette.datastructures import Headers
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from workflows_server.http.guard.origins import SAFE_METHODS
from workflows_server.http.guard.refuse import env, refuse, route_path

Role = Literal["full", "read"]
FULL: Role = "full"
READ: Role = "read"
COOKIE = "workflows_session"
LOGIN_PATH = "/login"
PUBLIC_PATHS = frozenset({"/health", LOGIN_PATH, "/logout", "/api/session"})
PUBLIC_PREFIXES = ("/debugger/assets/",)
"""The pages' scripts and styles: the login page needs them; they hold no data."""


class Sessions:
    """The tokens and the session cookies signed with them (see the module docstring)."""

    def __init__(self, token: str, read_token: str | None = None, lifetime_seconds: float = 12 * 3600.0) -> None:
        if not token:
            raise ValueError("Sessions need a token")
        self._tokens: tuple[tuple[bytes, Role], ...] = ((token.encode(), FULL),) + (
            ((read_token.encode(), READ),) if read_token else ()
        )
        self._key = hashlib.sha256(b"workflows-server session\x00" + token.encode() + b"\x00"
                                   + (read_token or "").encode()).digest()
        self.lifetime_seconds = lifetime_seconds
        self._revoked: dict[str, float] = {}

    def role_of_token(self, given: str) -> Role | None:
        """The role ``given`` grants, or ``None``; every token is compared, in constant time."""
        found: Role | None = None
        for token, role in self._tokens:
            if hmac.compare_digest(given.encode(), token):
                found = role
        return found

    def issue(self, role: Role) -> str:
        """A new session cookie value for ``role``."""
        payload = f"{role}.{int(time.time() + self.lifetime_seconds)}.{secrets.token_urlsafe(18)}"
        return f"{payload}.{self._sign(payload)}"

    def role_of_cookie(self, value: str) -> Role | None:
        """The role of a session cookie that is genuine, unexpired and not logged out; else ``None``."""
        payload, _, signature = value.rpartition(".")
        parts = payload.split(".")
        if len(parts) != 3 or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        role, expiry, nonce = parts
        if role not in (FULL, READ) or not expiry.isdigit() or int(expiry) < time.time() or nonce in self._revoked:
            return None
        return FULL if role == FULL else READ

    def revoke(self, value: str) -> None:
        """Log out the session ``value`` (in this process; other replicas honour it until it expires)."""
        payload, _, _ = value.rpartition(".")
        parts = payload.split(".")
        if self.role_of_cookie(value) is None or len(parts) != 3:
            return
        now = time.time()
        self._revoked = {nonce: until for nonce, until in self._revoked.items() if until > now}
        self._revoked[parts[2]] = float(parts[1])

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


def session_cookie(headers: Headers) -> str | None:
    """The session cookie's value in the request's ``Cookie`` header, if any."""
    raw = headers.get("cookie")
    if not raw:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(raw)
    except Exception:  # a malformed Cookie header is no session
        return None
    morsel = cookies.get(COOKIE)
    return morsel.value if morsel is not None else None


def role_of(scope: Scope) -> Role:
    """The role ``Auth`` gave the request (``full`` when the server has no token)."""
    state = scope.get("state") or {}
    role = state.get("role", FULL)
    return READ if role == READ else FULL


class Auth:
    """Lets a request through with a valid bearer token or session cookie (see the module docstring).

    Without one: a browser asking for a page is sent to the login page; anything else
    gets 401. With the read-only token, any request that would change something gets 403.
    """

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        method: str = scope.get("method", "GET")
        headers = Headers(scope=scope)
        role = self.role(headers)
        if role is not None:
            scope.setdefault("state", {})["role"] = role
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or method == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if role is None:
            await self.unauthenticated(scope, receive, send, headers)
            return
        if role == READ and method not in SAFE_METHODS:
            await refuse(scope, receive, send, 403, "this token is read-only: it may read runs but not start, answer, "
                         f"cancel, re-run, fork or purge them (that needs {env('token')})")
            return
        await self.app(scope, receive, send)

    def role(self, headers: Headers) -> Role | None:
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, given = authorization.partition(" ")
            return self.sessions.role_of_token(given.strip()) if scheme.lower() == "bearer" else None
        cookie = session_cookie(headers)
        return self.sessions.role_of_cookie(cookie) if cookie else None

    async def unauthenticated(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        if scope.get("method") == "GET" and "text/html" in headers.get("accept", ""):
            # A person opening a page: to the login page, which comes back here (a path, never a token).
            target = scope.get("path", "/")
            query = scope.get("query_string", b"").decode("latin-1")
            back = urlencode({"next": target + ("?" + query if query else "")})
            await RedirectResponse(f"{LOGIN_PATH}?{back}", 303)(scope, receive, send)
            return
        authorization = headers.get("authorization")
        if authorization is None:
            detail = ("missing 'Authorization: Bearer <token>' header (people log in to the debugger at /login; "
                      "the session cookie may have expired)")
        else:
            detail = "wrong bearer token"
        await refuse(scope, receive, send, 401, detail, headers={"WWW-Authenticate": "Bearer"})


__all__ = ["COOKIE", "FULL", "LOGIN_PATH", "PUBLIC_PATHS", "READ", "Auth", "Role", "Sessions", "role_of", "session_cookie"]
