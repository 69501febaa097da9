"""What the debugger asks a store: a searchable index of runs, and the LLM calls of each run.

Kept beside the run records of ``store.base`` (these are additions, read by the
debugger and written by its record listener and span processor):

- ``RunIndexUpdate``: what the index knows of a run besides its row: its session (the
  Context's id, shared by the runs that reuse it), its input as JSON text (searched),
  how many step attempts it made, and the run it was re-run or forked from;
- ``RunQuery`` / ``RunPage`` / ``RunSummary``: the home page's question and answer,
  filtered, searched and paginated by the store itself (newest first, keyset cursor);
- ``LlmCall``: one LLM call a step made, from the span its client produced.

Every store answers these from its own indexes, built to stay fast with a million runs:
a full-text index of each run's text (SQLite: an FTS5 table with the trigram tokenizer;
PostgreSQL: ``pg_trgm`` GIN indexes) kept up to date by triggers, indexes that read the
list newest first under each filter, keyset cursors, and counts that stop at
``store.sql.COUNT_CAP`` (``RunPage.total_capped``). The statements the two stores share
(the run search, the LLM calls) are built in ``store/sql.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from workflows_server.store.records import HandlerRow

Relation = Literal["rerun", "fork"]


@dataclass(kw_only=True)
class RunIndexUpdate:
    """Fields of a run's index entry to set; ``None`` leaves a field as it is."""

    session_id: str | None = None
    input_text: str | None = None
    """The start event as JSON text (what text search looks in, with the result and error)."""
    add_steps: int = 0
    """Step attempts to add to the count."""
    reset_steps: bool = False
    """Start the count again (a new run under the same handler id)."""
    parent_id: str | None = None
    relation: Relation | None = None
    fork_seq: int | None = None
    """For a fork: the work item (``seq``) of the step it was forked after."""


@dataclass(kw_only=True)
class IndexEntry:
    """A change of one run's index entry, written with the journal records of a flush."""

    handler_id: str
    update: RunIndexUpdate


@dataclass(kw_only=True)
class RunQuery:
    """Filters of the run list; each given filter must match (``None``/empty: any)."""

    status: Sequence[str] | None = None
    workflow_name: Sequence[str] | None = None
    session_id: str | None = None
    started_after: str | None = None
    """ISO 8601; runs started at or after it."""
    started_before: str | None = None
    """ISO 8601; runs started before it."""
    text: str | None = None
    """Case-insensitive substring of the run's id, input, result or error (docs/debugger.md, "Search")."""
    waiting: bool | None = None
    """Only runs waiting for an outside event (True) or only the others (False)."""
    parent_id: str | None = None
    """Only the runs re-run or forked from this run."""
    handler_id: str | None = None
    """Only this run."""
    limit: int = 50
    cursor: str | None = None
    """``RunPage.next_cursor`` of the previous page."""
    oldest_first: bool = False


@dataclass(kw_only=True)
class RunSummary:
    """One run of the list: its row and what the index and LLM calls add to it."""

    row: HandlerRow
    session_id: str | None = None
    input_text: str | None = None
    steps: int = 0
    tokens: int = 0
    cost: float | None = None
    llm_calls: int = 0
    parent_id: str | None = None
    relation: Relation | None = None
    fork_seq: int | None = None


@dataclass(kw_only=True)
class RunPage:
    """A page of runs, the number of runs matching in all, and the cursor of the next page."""

    runs: list[RunSummary] = field(default_factory=list)
    total: int = 0
    """How many runs match, counted up to ``store.sql.COUNT_CAP`` (then ``total_capped``)."""
    total_capped: bool = False
    """More than ``total`` runs match: counting stopped there (a page says "10 000+")."""
    next_cursor: str | None = None


@dataclass(kw_only=True)
class LlmCall:
    """One LLM call made by a step attempt, as its span described it."""

    handler_id: str
    run_id: str
    step: str
    attempt: int
    span_id: str
    trace_id: str
    started_at: str
    ended_at: str
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None
    """US dollars, when the span or the configured prices say."""
    input_text: str | None = None
    output_text: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(started_at: str, handler_id: str) -> str:
    return f"{started_at}|{handler_id}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    """``(started_at, handler_id)`` of a cursor; ``ValueError`` when it is not one."""
    started_at, sep, handler_id = cursor.rpartition("|")
    if not sep or not started_at or not handler_id:
        raise ValueError(f"{cursor!r} is not a run list cursor (use next_cursor of the previous page)")
    return started_at, handler_id


__all__ = [
    "IndexEntry",
    "LlmCall",
    "Relation",
    "RunIndexUpdate",
    "RunPage",
    "RunQuery",
    "RunSummary",
    "decode_cursor",
    "encode_cursor",
]
