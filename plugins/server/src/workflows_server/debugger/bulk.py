"""One action on many runs: ``POST /api/runs/actions``.

The body names the action and the runs, by id or by the run list's filter::

    {"action": "cancel", "ids": ["3f2a...", "9b1c..."]}
    {"action": "rerun", "filter": {"status": "failed", "workflow": "orders", "q": "timeout"}}

``filter`` takes the run list's query parameters (``status``, ``workflow``, ``session``,
``since``, ``until``, ``q``; a value may be a string or a list of strings) and means every
run that matches it when the request arrives, not only the page a person sees. With
``"dry_run": true`` nothing is done: the answer says how many runs match (the page's
confirmation names that count). More than ``WORKFLOWS_SERVER_BULK_MAX_RUNS`` runs is
refused (400) before any is touched.

- ``cancel`` cancels each run that is running or waiting; a finished run is skipped.
- ``rerun`` starts each failed run again with the same input (a new run linked to it,
  as the run page's button does); a run that did not fail is skipped.

The answer reports each run's outcome (``done``, ``skipped`` or ``failed``, with a
``detail``; a re-run's ``new_handler_id``) and the count of each outcome. Runs are acted
on a few at a time; one run's failure never stops the others. The read-only token gets
403 here as on every action (``http.guard.sessions``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from starlette.exceptions import HTTPException

from workflows_server.debugger.actions import ActionError, rerun
from workflows_server.debugger.filters import FILTERS, run_query
from workflows_server.http.guard.limits import check_handler_id
from workflows_server.runs.errors import RunConflict, RunNotFound
from workflows_server.store import TERMINAL, StoreError

if TYPE_CHECKING:
    from workflows_server.http.served import Served


class DebuggerApi(Protocol):
    """What a bulk action uses of the debugger's API: its server, and its store reads."""

    server: Served

    @property
    def store(self) -> Any: ...

    async def read(self, fn: Any, *args: Any, **kwargs: Any) -> Any: ...

logger = logging.getLogger("workflows_server.debugger")

ACTIONS = ("cancel", "rerun")
CONCURRENCY = 8
"""Runs acted on at once."""
_KEYS = {"action", "ids", "filter", "dry_run"}


def _filter(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        raise HTTPException(400, f"'filter' must be an object of the run list's filters ({', '.join(FILTERS)}), "
                                 f"got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(FILTERS))
    if unknown:
        raise HTTPException(400, f"unknown filter(s) {', '.join(unknown)}; expected any of: {', '.join(FILTERS)}")
    params: dict[str, list[str]] = {}
    for key, value in raw.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise HTTPException(400, f"filter {key!r} must be a string or a list of strings")
        params[key] = [item for item in items if item]
    return params


async def _matching(api: DebuggerApi, raw: Any, most: int) -> list[str]:
    """The ids of every run matching the filter, newest first; 400 when there are more than ``most``."""
    query = run_query(_filter(raw), limit=min(500, most + 1))
    ids: list[str] = []
    while True:
        try:
            page = await api.read(api.store.search_runs, query)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        ids.extend(summary.row.handler_id for summary in page.runs)
        if len(ids) > most:
            raise HTTPException(400, f"more than {most} runs match this filter: narrow it, or raise "
                                     "WORKFLOWS_SERVER_BULK_MAX_RUNS; no run was touched")
        if not page.next_cursor:
            return ids
        query = dataclasses.replace(query, cursor=page.next_cursor)


def _ids(raw: Any, most: int) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise HTTPException(400, "'ids' must be a non-empty list of run (handler) ids")
    if len(raw) > most:
        raise HTTPException(400, f"'ids' names {len(raw)} runs, more than {most} "
                                 "(WORKFLOWS_SERVER_BULK_MAX_RUNS); no run was touched")
    return list(dict.fromkeys(check_handler_id(item, "ids[]") for item in raw))


async def _act(api: DebuggerApi, action: str, handler_id: str) -> dict[str, Any]:
    server = api.server
    outcome: dict[str, Any] = {"handler_id": handler_id}
    try:
        row = await api.read(api.store.get_handler, handler_id)
        if row is None:
            return {**outcome, "outcome": "skipped", "detail": "no such run"}
        if action == "cancel":
            if row.status in TERMINAL:
                return {**outcome, "outcome": "skipped", "detail": f"already {row.status}"}
            await server.runs.cancel(handler_id)
            return {**outcome, "outcome": "done", "detail": "cancelled"}
        if row.status != "failed":
            status = "waiting" if row.status == "running" and row.waiting_since else row.status
            return {**outcome, "outcome": "skipped", "detail": f"{status}: only failed runs are re-run"}
        new = await rerun(server, row)
        return {**outcome, "outcome": "done", "detail": "re-run", "new_handler_id": new.handler_id}
    except (ActionError, RunConflict, RunNotFound, StoreError) as exc:
        return {**outcome, "outcome": "failed", "detail": str(exc)}
    except Exception:  # one run's failure is reported with it and never stops the others
        logger.exception("bulk %s of run %s failed", action, handler_id)
        return {**outcome, "outcome": "failed", "detail": "internal error (see the server's log)"}


async def bulk_action(api: DebuggerApi, body: Any) -> dict[str, Any]:
    """Do ``body``'s action on its runs (see the module docstring); the JSON answer."""
    if not isinstance(body, dict) or body.get("action") not in ACTIONS:
        raise HTTPException(400, "request body must be a JSON object with 'action' (one of: "
                                 f"{', '.join(ACTIONS)}) and either 'ids' (a list of run ids) or 'filter' "
                                 "(the run list's filters)")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise HTTPException(400, f"unknown field(s) {', '.join(unknown)}; expected: {', '.join(sorted(_KEYS))}")
    if ("ids" in body) == ("filter" in body):
        raise HTTPException(400, "give either 'ids' or 'filter', not both and not neither")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise HTTPException(400, "'dry_run' must be true or false")
    action = str(body["action"])
    most = api.server.settings.bulk_max_runs
    ids = _ids(body["ids"], most) if "ids" in body else await _matching(api, body["filter"], most)
    if dry_run:
        return {"action": action, "matched": len(ids), "dry_run": True}
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(handler_id: str) -> dict[str, Any]:
        async with limit:
            return await _act(api, action, handler_id)

    results = list(await asyncio.gather(*(one(handler_id) for handler_id in ids)))
    return {
        "action": action,
        "matched": len(ids),
        "counts": dict(Counter(result["outcome"] for result in results)),
        "results": results,
    }


__all__ = ["ACTIONS", "bulk_action"]
