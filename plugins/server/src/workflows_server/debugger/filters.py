"""The run list's filters: the query parameters of ``/api/runs`` (and its live stream), and the
``filter`` of a bulk action, turned into the store's ``RunQuery``."""

from __future__ import annotations

from datetime import timezone
from typing import Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request

from workflows_server.debugger.view import parse_time
from workflows_server.http.guard.limits import search_text
from workflows_server.store import STATUSES
from workflows_server.store.queries import RunQuery
from workflows_server.store.sql import MIN_INDEXED_TEXT

LIST_STATUSES = (*STATUSES, "waiting")
FILTERS = ("status", "workflow", "session", "since", "until", "q")
"""The run list's filters (query parameters of ``/api/runs``, keys of a bulk action's ``filter``)."""

Params = Mapping[str, Sequence[str]]
"""Filters by name, each with its given values (a query string's, or a bulk action's ``filter``)."""


def first(params: Params, name: str) -> str | None:
    values = params.get(name) or ()
    return values[0] if values else None


def time_param(params: Params, name: str) -> str | None:
    raw = first(params, name)
    if not raw:
        return None
    try:
        return parse_time(raw).astimezone(timezone.utc).isoformat()
    except ValueError:
        raise HTTPException(400, f"{name!r} must be an ISO 8601 time, got {raw!r}") from None


def values(params: Params, name: str) -> list[str]:
    return [v.strip() for raw in params.get(name) or () for v in raw.split(",") if v.strip()]


def query_params(request: Request) -> dict[str, list[str]]:
    """The request's query parameters, each with all its values."""
    return {key: request.query_params.getlist(key) for key in request.query_params}


def run_query(params: Params, *, limit: int = 25, cursor: str | None = None) -> RunQuery:
    """The store's question for the run list's filters; 400 naming a filter that is wrong."""
    statuses = values(params, "status")
    bad = sorted(set(statuses) - set(LIST_STATUSES))
    if bad:
        raise HTTPException(400, f"unknown status {', '.join(bad)}; expected any of: {', '.join(LIST_STATUSES)}")
    waiting: bool | None = None
    if statuses:
        chosen = set(statuses)
        if chosen == {"waiting"}:
            waiting = True
        elif "running" in chosen and "waiting" not in chosen:
            waiting = False if chosen == {"running"} else None
        statuses = sorted({("running" if s == "waiting" else s) for s in chosen})
    text = search_text(first(params, "q"), "q")
    if text is not None and len(text) < MIN_INDEXED_TEXT:
        raise HTTPException(400, f"q must be at least {MIN_INDEXED_TEXT} characters, got {text!r}: runs are "
                                 "searched by the trigrams (3-character pieces) of their text")
    return RunQuery(
        status=statuses or None, workflow_name=values(params, "workflow") or None,
        session_id=first(params, "session") or None, started_after=time_param(params, "since"),
        started_before=time_param(params, "until"), text=text, waiting=waiting,
        limit=limit, cursor=cursor,
    )


__all__ = ["FILTERS", "LIST_STATUSES", "Params", "first", "query_params", "run_query", "time_param", "values"]
