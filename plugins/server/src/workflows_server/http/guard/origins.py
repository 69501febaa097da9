"""State-changing requests from another origin are refused (against cross-site request forgery).

A page on another origin can make a browser send a form or a ``fetch`` to this server
(with the person's session cookie on the same site). Browsers name the page's origin in
``Origin`` and say ``Sec-Fetch-Site: cross-site``: a request that changes something
(any method but GET, HEAD, OPTIONS) is refused with 403 when either says it came from
elsewhere. Clients that are not browsers (``llama-agents-client``, curl, SDKs) send
neither header and are not affected. A body must be ``application/json`` (or come with
no ``Content-Type`` at all): an HTML form can only send ``text/plain``,
``application/x-www-form-urlencoded`` or ``multipart/form-data``, and always names it.
"""

from __future__ import annotations

from typing import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from workflows_server.http.guard.refuse import env, refuse, shown

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normal_origin(origin: str) -> str:
    """``scheme://host[:port]``, lower case, without a default port or a trailing slash."""
    origin = origin.strip().lower().rstrip("/")
    scheme, sep, netloc = origin.partition("://")
    default = _DEFAULT_PORTS.get(scheme)
    if sep and default and netloc.endswith(":" + default):
        netloc = netloc[: -len(default) - 1]
    return f"{scheme}{sep}{netloc}"


def _authority(origin: str) -> str:
    return origin.partition("://")[2]


def _host_authority(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = _DEFAULT_PORTS.get(scheme)
    return host[: -len(default) - 1] if default and host.endswith(":" + default) else host


def has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


class CrossSiteCheck:
    """403 for a state-changing request from another origin; 415 for a body that is not JSON.

    The server's own origin is the one the request's ``Host`` names (checked by
    ``HostCheck`` first); ``allowed_origins`` (``scheme://host[:port]``, ``*`` for any)
    may send state-changing requests too.
    """

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {normal_origin(origin) for origin in allowed_origins if origin.strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET") in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self.cross_site(headers, scope)
        if problem:
            await refuse(scope, receive, send, 403, problem)
            return
        given = headers.get("content-type")
        if given is not None and has_body(headers) and not is_json(given):
            await refuse(scope, receive, send, 415, f"the request body must be JSON, sent with 'Content-Type: "
                         f"application/json'; got Content-Type {shown(given)}")
            return
        await self.app(scope, receive, send)

    def cross_site(self, headers: Headers, scope: Scope) -> str | None:
        """Why the request is refused as cross-site, or ``None``."""
        origin = headers.get("origin")
        if origin is not None:
            normal = normal_origin(origin)
            own = _host_authority(headers.get("host", ""), normal.partition("://")[0])
            if normal in self.allowed or "*" in self.allowed or (own and _authority(normal) == own):
                return None
            return (f"cross-origin request refused: Origin {shown(origin)} is not this server's origin; a page on "
                    f"another origin may not change anything here (list trusted origins in {env('allowed_origins')})")
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return "cross-site request refused (Sec-Fetch-Site: cross-site): a page on another site may not change anything here"
        return None


__all__ = ["SAFE_METHODS", "CrossSiteCheck", "has_body", "is_json", "normal_origin"]
