"""durable_app's server, with one route that fails as a bug would: ``GET /workflows/quick/events``
raises (its message holds a secret that must stay in the log)."""

from __future__ import annotations

from typing import Any

from durable_app import server

_event_classes = server.event_classes


def event_classes(name: str) -> list[Any]:
    if name == "quick":
        raise RuntimeError("a bug with secret-detail-4711 in its message")
    return _event_classes(name)


server.event_classes = event_classes  # type: ignore[method-assign]
