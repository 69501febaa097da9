"""Pushed updates: what a page shows, sent as Server-Sent Events each time it changes.

A page opens one ``EventSource`` on the endpoint of what it shows (the run list with its
filters, one run, one session) and makes no other request while it is open. The
stream sends the page's whole data (the JSON of the matching ``GET`` endpoint) as one
message whenever it changed, with an id that is a digest of it; heartbeat comments
keep it open through proxies (``WORKFLOWS_SERVER_SSE_HEARTBEAT_SECONDS``).

When it sends: the stream takes its wake-ups before it reads, then reads the store
and sends if the digest differs from the last one sent. Wake-ups come from the
server's hub (``runs.hub``: a run of this process wrote, or, on PostgreSQL, another
replica said it did), from the debugger's own record listener (any run of this
process wrote: the run list may have a new run), and, on PostgreSQL, every
``poll_seconds`` (a notification may be missed while the LISTEN connection
reconnects, and runs started on other replicas appear on no key yet). Wake-ups that
come close together are read once (``COALESCE_SECONDS``).

Reconnecting loses nothing: every message is the whole of what the page shows, so a
page that comes back (``Last-Event-ID``, sent by the browser after a dropped
connection or a server restart; ``?last_event_id=`` for a page that opens a new
stream) gets the current data at once unless it already has it. A read that fails
ends the stream (logged); the browser reconnects after ``RETRY_MS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

from starlette.requests import Request
from starlette.responses import StreamingResponse

logger = logging.getLogger("workflows_server.debugger")

COALESCE_SECONDS = 0.2
"""Wake-ups within this long of each other are answered by one read."""
RETRY_MS = 1000
"""How long the browser waits before it reconnects a dropped stream."""
ANY_RUN = "debugger:any-run"
"""The hub key the debugger's record listener notifies for every record of this process."""


@dataclass(kw_only=True)
class Shown:
    """What a page shows now: its data, and the hub keys whose changes may change it."""

    data: dict[str, Any]
    keys: list[str] = field(default_factory=list)
    gone: str | None = None
    """Set when what the page shows no longer exists (the message says why); the stream ends."""


def digest(data: Any) -> str:
    """The id of a message: a digest of its data, durations left out (they grow with the clock, and
    the page counts them up itself)."""
    text = json.dumps(_timeless(data), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _timeless(item) for key, item in value.items() if key != "duration_ms"}
    if isinstance(value, list):
        return [_timeless(item) for item in value]
    return value


Snapshot = Callable[[], Awaitable[Shown]]


class Waiter(Protocol):
    """Wake-ups taken (before a read) for some keys."""

    async def wait(self, timeout: float | None) -> bool:
        """Whether a wake-up came (or the store must be read again) before ``timeout`` seconds."""
        ...


Watch = Callable[[list[str]], Waiter]
"""Takes the wake-ups of these hub keys now (call it before reading the store)."""


def push_response(request: Request, snapshot: Snapshot, watch: Watch, heartbeat: float) -> StreamingResponse:
    """The ``text/event-stream`` response that sends ``snapshot()`` each time it changes."""
    last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    return StreamingResponse(
        _frames(snapshot, watch, heartbeat, last),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _frames(snapshot: Snapshot, watch: Watch, heartbeat: float, last: str | None) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    yield f"retry: {RETRY_MS}\n\n"
    keys: list[str] = []
    waiter = watch(keys)
    quiet_since = loop.time()
    reread = False
    while True:
        try:
            shown = await snapshot()
        except Exception:
            logger.warning("a debugger page's stream could not read the store; the page reconnects", exc_info=True)
            return
        if shown.gone is not None:
            yield f"event: gone\ndata: {json.dumps({'detail': shown.gone})}\n\n"
            return
        if shown.keys != keys:
            keys = shown.keys
            waiter = watch(keys)
            if not reread:
                # Follow the new keys and read once more, so that a change of a run that
                # just came into view, between the read and these wake-ups, is not missed.
                reread = True
                continue
        reread = False
        sent = digest(shown.data)
        if sent != last:
            last = sent
            yield f"id: {sent}\ndata: {json.dumps(shown.data, default=str)}\n\n"
            quiet_since = loop.time()
        while True:
            timeout = max(0.0, quiet_since + heartbeat - loop.time()) if heartbeat else None
            if await waiter.wait(timeout):
                await asyncio.sleep(COALESCE_SECONDS)
                waiter = watch(keys)
                break
            yield ": heartbeat\n\n"
            quiet_since = loop.time()


__all__ = ["ANY_RUN", "COALESCE_SECONDS", "RETRY_MS", "Shown", "Waiter", "Watch", "digest", "push_response"]
