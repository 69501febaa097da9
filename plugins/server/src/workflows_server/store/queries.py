"""What the debugger asks a store: a searchable index of runs, and the LLM calls of each run.

Kept beside the run records of ``store.base`` (these are additions, read by the
debugger and written by its record listener and span processor):

- ``RunIndexUpdate``: what the index knows of a run besides its row: its session (the
  Context's id, shared by the runs that reuse it), its input as JSON text (searched),
  how many step attempts it made, and the run it was re-run or forked from;
- ``RunQuery`` / ``RunPage`` / ``RunSummary``: the home page's question and answer,
  filtered, searched and paginated by the store itself (newest first, keyset cursor);
- ``LlmCall``: one LLM call a step made, from the span its client produced.

Every store answers these with portable SQL (no JSON operators, no full-text
extension): ``LOWER(column) LIKE LOWER(?)`` for search, ``SUM``/``LEFT JOIN`` for
totals, ``INSERT ... ON CONFLICT DO UPDATE`` for the index. The statements both stores
run the same way are built here (``run_search``, the ``llm_calls`` statements), each store
giving its driver's parameter mark; each store only executes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from typing import Any, Callable, Literal, Sequence

from workflows_server.store.base import HandlerRow

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
    """Case-insensitive substring of the run's input, result or error."""
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


MAX_PAGE = 500
"""The most runs one page of ``search_runs`` holds, whatever ``RunQuery.limit`` asks."""


@dataclass(frozen=True, kw_only=True)
class RunSearch:
    """The two statements behind ``search_runs``: how many runs match, and one page of
    them (one row more than the page, which tells whether there is a next page)."""

    count_sql: str
    count_params: list[Any]
    page_sql: str
    page_params: list[Any]
    limit: int

    def page(self, rows: Sequence[Sequence[Any]], total: int, handler_row: Callable[[Sequence[Any]], HandlerRow],
             width: int) -> RunPage:
        """The answer, from the page statement's rows: their first ``width`` values are
        the store's handler row (read by ``handler_row``), then the index's and the LLM
        calls' columns in the order ``run_search`` selects them."""
        runs = [
            RunSummary(
                row=handler_row(r[:width]), session_id=r[width], steps=int(r[width + 1]), parent_id=r[width + 2],
                relation=r[width + 3], fork_seq=r[width + 4], tokens=int(r[width + 5]),
                cost=None if r[width + 6] is None else float(r[width + 6]), llm_calls=int(r[width + 7]),
                input_text=r[width + 8],
            )
            for r in rows[: self.limit]
        ]
        cursor = None
        if len(rows) > self.limit:
            last = runs[-1].row
            cursor = encode_cursor(last.started_at, last.handler_id)
        return RunPage(runs=runs, total=total, next_cursor=cursor)


def run_search(query: RunQuery, *, columns: Sequence[str], mark: str) -> RunSearch:
    """The statements that answer ``query`` in a store whose handler rows have
    ``columns`` (in ``HandlerRow`` order) and whose driver marks parameters with
    ``mark`` (``?`` for sqlite3, ``%s`` for psycopg). ``ValueError`` for a bad cursor."""
    where: list[str] = []
    params: list[Any] = []
    for column, values in (("h.status", query.status), ("h.workflow_name", query.workflow_name)):
        if values:
            where.append(f"{column} IN ({', '.join(mark for _ in values)})")
            params.extend(values)
    for column, value in (("i.session_id", query.session_id), ("i.parent_id", query.parent_id),
                          ("h.handler_id", query.handler_id)):
        if value:
            where.append(f"{column} = {mark}")
            params.append(value)
    if query.started_after:
        where.append(f"h.started_at >= {mark}")
        params.append(query.started_after)
    if query.started_before:
        where.append(f"h.started_at < {mark}")
        params.append(query.started_before)
    if query.waiting is not None:
        where.append("h.waiting_since IS NOT NULL" if query.waiting else "h.waiting_since IS NULL")
    if query.text:
        # LIKE with an escape character: the user's % and _ are plain characters.
        pattern = "%" + query.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        like = f"LIKE {mark} ESCAPE '\\'"
        where.append(
            f"(LOWER(COALESCE(i.input_text, '')) {like} OR LOWER(COALESCE(h.result, '')) {like} "
            f"OR LOWER(COALESCE(h.error, '')) {like} OR LOWER(h.handler_id) {like})"
        )
        params.extend([pattern] * 4)
    base = "FROM handlers h LEFT JOIN run_index i ON i.handler_id = h.handler_id"
    count_sql = f"SELECT COUNT(*) {base}" + ((" WHERE " + " AND ".join(where)) if where else "")
    page_where, page_params = list(where), list(params)
    older = not query.oldest_first
    if query.cursor:
        started_at, handler_id = decode_cursor(query.cursor)
        op = "<" if older else ">"
        page_where.append(f"(h.started_at {op} {mark} OR (h.started_at = {mark} AND h.handler_id {op} {mark}))")
        page_params.extend([started_at, started_at, handler_id])
    order = "DESC" if older else "ASC"
    selected = ", ".join(f"h.{column}" for column in columns)
    page_sql = (
        f"SELECT {selected}, i.session_id, COALESCE(i.steps, 0), i.parent_id, i.relation, i.fork_seq, "
        "COALESCE(l.tokens, 0), l.cost, COALESCE(l.calls, 0), i.input_text "
        f"{base} LEFT JOIN (SELECT handler_id, SUM(total_tokens) AS tokens, SUM(cost) AS cost, COUNT(*) AS calls "
        "FROM llm_calls GROUP BY handler_id) l ON l.handler_id = h.handler_id"
        + ((" WHERE " + " AND ".join(page_where)) if page_where else "")
        + f" ORDER BY h.started_at {order}, h.handler_id {order} LIMIT {mark}"
    )
    limit = max(1, min(int(query.limit), MAX_PAGE))
    return RunSearch(
        count_sql=count_sql, count_params=params, page_sql=page_sql, page_params=[*page_params, limit + 1], limit=limit
    )


LLM_CALL_COLUMNS = (
    "handler_id", "run_id", "step", "attempt", "span_id", "trace_id", "started_at", "ended_at", "model",
    "prompt_tokens", "completion_tokens", "total_tokens", "cost", "input_text", "output_text", "error", "extra",
)
"""The ``llm_calls`` columns both stores write and read, in ``LlmCall`` order."""


def insert_llm_call_sql(mark: str) -> str:
    """The statement that stores one LLM call (``llm_call_values``), with the driver's parameter mark."""
    return f"INSERT INTO llm_calls ({', '.join(LLM_CALL_COLUMNS)}) VALUES ({', '.join(mark for _ in LLM_CALL_COLUMNS)})"


def select_llm_calls_sql(mark: str) -> str:
    """The statement that reads a run's LLM calls (``llm_call_of``), oldest first; its one parameter is the handler id."""
    return f"SELECT {', '.join(LLM_CALL_COLUMNS)} FROM llm_calls WHERE handler_id = {mark} ORDER BY started_at, id"


def llm_call_values(call: LlmCall) -> tuple[Any, ...]:
    """``call`` as the values of ``LLM_CALL_COLUMNS`` (``extra`` as JSON text)."""
    return (
        call.handler_id, call.run_id, call.step, call.attempt, call.span_id, call.trace_id, call.started_at,
        call.ended_at, call.model, call.prompt_tokens, call.completion_tokens, call.total_tokens, call.cost,
        call.input_text, call.output_text, call.error, json.dumps(call.extra),
    )


def llm_call_of(row: Sequence[Any]) -> LlmCall:
    """An ``LlmCall`` from a row of ``LLM_CALL_COLUMNS``."""
    values = dict(zip(LLM_CALL_COLUMNS, row))
    values["extra"] = json.loads(values["extra"] or "{}")
    return LlmCall(**values)


def encode_cursor(started_at: str, handler_id: str) -> str:
    return f"{started_at}|{handler_id}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    """``(started_at, handler_id)`` of a cursor; ``ValueError`` when it is not one."""
    started_at, sep, handler_id = cursor.rpartition("|")
    if not sep or not started_at or not handler_id:
        raise ValueError(f"{cursor!r} is not a run list cursor (use next_cursor of the previous page)")
    return started_at, handler_id


__all__ = [
    "LLM_CALL_COLUMNS",
    "MAX_PAGE",
    "LlmCall",
    "Relation",
    "RunIndexUpdate",
    "RunPage",
    "RunQuery",
    "RunSearch",
    "RunSummary",
    "decode_cursor",
    "encode_cursor",
    "insert_llm_call_sql",
    "llm_call_of",
    "llm_call_values",
    "run_search",
    "select_llm_calls_sql",
]
