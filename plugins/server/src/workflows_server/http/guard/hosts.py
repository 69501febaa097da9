"""The ``Host`` header must name this server: a page whose name an attacker rebinds to
127.0.0.1 (DNS rebinding) sends its own name, and is refused."""

from __future__ import annotations

from typing import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from workflows_server.http.guard.refuse import env, refuse, route_path, shown

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
UNCHECKED_PATHS = frozenset({"/health"})
"""Load balancers probe ``/health`` by address; it tells nothing."""


def allowed_hosts(listen_host: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The host names a server listening on ``listen_host`` answers to: the loopback names,
    ``listen_host`` itself (unless it is a wildcard such as ``0.0.0.0``), and ``extra``."""
    names = list(LOOPBACK_NAMES)
    host = listen_host.strip().lower()
    if host not in WILDCARD_HOSTS:
        names.append(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    names.extend(name.strip().lower() for name in extra if name.strip())
    return tuple(dict.fromkeys(names))


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8080`` → ``[::1]``)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end > 0 else header
    name, colon, port = header.rpartition(":")
    return name if colon and port.isdigit() else header


def host_allowed(name: str, allowed: Iterable[str]) -> bool:
    """``*`` allows any name; ``.example.com`` allows example.com and its subdomains."""
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


class HostCheck:
    """Answers 400 to a request whose ``Host`` is not one of ``allowed`` (``/health`` excepted)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = tuple(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or route_path(scope) in UNCHECKED_PATHS:
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("host", "")
        if host_allowed(host_name(given), self.allowed):
            await self.app(scope, receive, send)
            return
        detail = (
            f"host {shown(given)} is not one this server answers to (it answers to: {', '.join(self.allowed)}); "
            f"if it is this server's name, add it to {env('allowed_hosts')}"
            if given else "the request has no Host header; this server needs one naming it"
        )
        await refuse(scope, receive, send, 400, detail)


__all__ = ["LOOPBACK_NAMES", "HostCheck", "allowed_hosts", "host_allowed", "host_name"]
