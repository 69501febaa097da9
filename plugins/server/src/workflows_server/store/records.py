"""The typed records a run store keeps and answers with, its errors, and its status names.

Plain data with no behaviour: every layer (the stores, the durable runtime, the HTTP
routes, the debugger) imports them from here, so none of those imports another to
name a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

Status = Literal["running", "completed", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = ("running", "completed", "failed", "cancelled")
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def now_iso() -> str:
    """The current UTC time as ISO 8601 (what every timestamp of a store is)."""
    return datetime.now(timezone.utc).isoformat()


class StoreError(Exception):
    """A store could not be opened or used (the message says which file or URL, and why)."""


class StoreOwned(StoreError):
    """A SQLite store file is owned by another server process (the message names it: pid, host, since)."""


class HandlerExists(StoreError):
    """``create_handler`` was given an id that is already taken."""


class FencedOut(StoreError):
    """A write for a run this process no longer holds (another replica claimed it): refused, nothing written.

    Raised by shared stores (``SharedStore``) only: the replica's lease on the run
    lapsed and another replica claimed it (its fencing number moved on), or this
    replica never held the run.
    """

    def __init__(self, handler_id: str, reason: str) -> None:
        super().__init__(f"write for run {handler_id!r} refused: {reason}")
        self.handler_id = handler_id


@dataclass(kw_only=True)
class HandlerRow:
    """One run as the HTTP API reports it, plus what continuing it needs."""

    handler_id: str
    workflow_name: str
    run_id: str
    status: Status = "running"
    error: str | None = None
    result: dict[str, Any] | None = None
    """The final event's envelope (``{"value", "type", "types", "qualified_name"}``) once completed."""
    started_at: str = field(default_factory=now_iso)
    updated_at: str | None = None
    completed_at: str | None = None
    start_event: str | None = None
    """The start event, serialized by the workflow's serializer, until the run's journal holds it."""
    carrier: dict[str, str] = field(default_factory=dict)
    """The W3C trace context of the run's span, so a continued run stays in its trace."""
    epoch: int = 0
    waiting_since: str | None = None
    """Set while the run waits for an outside event with nothing of it in memory."""
    continued: int = 0
    """How many times the run was continued from the store (after a wait or a restart)."""
    owner: str | None = None
    """The replica holding the run (shared stores; ``None``: free, finished, or a single-process store)."""
    fence: int = 0
    """The fencing number of the run's latest claim (shared stores; 0 elsewhere)."""


@dataclass(kw_only=True)
class HandlerUpdate:
    """Fields of a ``HandlerRow`` to change; ``None`` leaves a field as it is."""

    status: Status | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    completed_at: str | None = None
    carrier: dict[str, str] | None = None
    clear_start_event: bool = False


@dataclass(kw_only=True)
class NewStreamEvent:
    """An event to append to a run's stream (it gets the next sequence number)."""

    envelope: dict[str, Any]
    internal: bool = False
    terminal: bool = False


@dataclass(kw_only=True)
class Append:
    """One journal record of a run to write, with the stream event and row change it implies."""

    handler_id: str
    epoch: int
    record: dict[str, Any]
    event: NewStreamEvent | None = None
    update: HandlerUpdate | None = None


@dataclass(kw_only=True)
class StreamEvent:
    """One event of a run's stream, with its sequence number."""

    sequence: int
    envelope: dict[str, Any]
    internal: bool
    terminal: bool
    at: str


@dataclass(kw_only=True)
class JournalEntry:
    """One stored journal record (``record`` is ``workflows.runtime.codec.encode_record`` output)."""

    position: int
    epoch: int
    at: str
    record: dict[str, Any]
    fence: int | None = None
    """The fencing number of the claim it was written under (shared stores; ``None`` elsewhere)."""


@dataclass(kw_only=True)
class Snapshot:
    """A base snapshot: the ``Context.to_dict()`` payload an epoch starts from."""

    epoch: int
    at: str
    payload: dict[str, Any]


@dataclass(kw_only=True)
class Claim:
    """A run a replica now holds: it alone may write for the run while its lease lasts."""

    handler_id: str
    workflow_name: str
    fence: int
    """The fencing number of this claim: one more than the run's previous claim."""
    previous_owner: str | None = None
    """The replica whose lapsed lease was taken over (``None``: the run was free)."""
    waiting: bool = False
    """The run waited in the store (it was claimed because an inbox item arrived for it)."""


@dataclass(kw_only=True)
class InboxItem:
    """Something sent to a run through any replica, for whichever replica holds (or claims) the run."""

    id: int
    handler_id: str
    kind: Literal["event", "cancel"]
    event: str | None = None
    """The event, serialized by the run's workflow serializer (``kind == "event"``)."""
    step: str | None = None
    at: str = field(default_factory=now_iso)


__all__ = [
    "Append",
    "Claim",
    "FencedOut",
    "HandlerExists",
    "HandlerRow",
    "HandlerUpdate",
    "InboxItem",
    "JournalEntry",
    "NewStreamEvent",
    "now_iso",
    "Snapshot",
    "Status",
    "STATUSES",
    "StoreError",
    "StoreOwned",
    "StreamEvent",
    "TERMINAL",
]
