"""The wire format of the HTTP API: HandlerData, and JSON request bodies read within their limits."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from workflows_server.http.guard.limits import parse_json
from workflows_server.store import HandlerRow


def handler_data(row: HandlerRow) -> dict[str, Any]:
    """A run as the API's HandlerData."""
    return {
        "handler_id": row.handler_id,
        "workflow_name": row.workflow_name,
        "run_id": row.run_id,
        "error": row.error,
        "result": row.result,
        "status": row.status,
        "started_at": row.started_at,
        "updated_at": row.updated_at,
        "completed_at": row.completed_at,
    }


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body (``None`` when empty); 413 past ``limit`` bytes, 400 if it is not JSON
    or breaks a limit of ``guard.parse_json`` (nesting, NUL)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body of {declared} bytes is over the limit of {limit} bytes "
                                 "(WORKFLOWS_SERVER_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body is over the limit of {limit} bytes (WORKFLOWS_SERVER_MAX_BODY_BYTES)")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return None
    return parse_json(body)


__all__ = ["handler_data", "read_json"]
