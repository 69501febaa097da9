"""The statements both SQL stores run, built once here: each store gives its driver's
parameter mark (``?`` for sqlite3, ``%s`` for psycopg) and executes them.

- ``handler_update``: the ``UPDATE handlers`` of a ``HandlerUpdate``;
- ``list_handlers``: the handlers, filtered by status and workflow;
- ``run_search``: the debugger's run list, counted and paged (``RunSearch``);
- ``insert_llm_call_sql`` / ``select_llm_calls_sql``: a run's LLM calls, with
  ``llm_call_values`` and ``llm_call_of`` to turn an ``LlmCall`` into a row and back.

What differs between the stores (the schema's types, claims and fencing, notifications)
stays in ``sqlite.py`` and ``postgres.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from workflows_server.store.records import HandlerRow, HandlerUpdate, now_iso
from workflows_server.store.queries import LlmCall, RunPage, RunQuery, RunSummary, decode_cursor, encode_cursor


@dataclass(frozen=True, kw_only=True)
class Statement:
    """One SQL statement and its parameters."""

    sql: str
    params: list[Any]


def handler_update(
    handler_id: str, update: HandlerUpdate, *, mark: str, when_finished: Sequence[str] = ("waiting_since = NULL",)
) -> Statement:
    """The ``UPDATE handlers`` that applies ``update`` (and stamps ``updated_at``);
    ``when_finished`` are the assignments a status other than ``running`` adds."""
    sets, params = [f"updated_at = {mark}"], [now_iso()]
    if update.status is not None:
        sets.append(f"status = {mark}")
        params.append(update.status)
        if update.status != "running":
            sets.extend(when_finished)
    for column in ("error", "completed_at"):
        value = getattr(update, column)
        if value is not None:
            sets.append(f"{column} = {mark}")
            params.append(value)
    if update.result is not None:
        sets.append(f"result = {mark}")
        params.append(json.dumps(update.result))
    if update.carrier is not None:
        sets.append(f"carrier = {mark}")
        params.append(json.dumps(update.carrier))
    if update.clear_start_event:
        sets.append("start_event = NULL")
    params.append(handler_id)
    return Statement(sql=f"UPDATE handlers SET {', '.join(sets)} WHERE handler_id = {mark}", params=params)


def list_handlers(
    *, columns: Sequence[str], mark: str, status: Sequence[str] | None = None, workflow_name: Sequence[str] | None = None
) -> Statement:
    """The ``SELECT`` of the handlers with one of ``status`` and one of ``workflow_name``
    (each when given), oldest first; ``columns`` are the store's handler row columns."""
    where: list[str] = []
    params: list[Any] = []
    for column, values in (("status", status), ("workflow_name", workflow_name)):
        if values:
            where.append(f"{column} IN ({', '.join(mark for _ in values)})")
            params.extend(values)
    sql = f"SELECT {', '.join(columns)} FROM handlers"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return Statement(sql=sql + " ORDER BY started_at, handler_id", params=params)


MAX_PAGE = 500
"""The most runs one page of ``search_runs`` holds, whatever ``RunQuery.limit`` asks."""


@dataclass(frozen=True, kw_only=True)
class RunSearch:
    """The two statements behind ``search_runs``: how many runs match (``count``), and
    one page of them (``page``: one row more than ``limit``, which tells whether there is
    a next page). ``width`` is how many handler row columns lead each page row."""

    count: Statement
    page: Statement
    limit: int
    width: int

    def answer(self, rows: Sequence[Sequence[Any]], total: int, handler_row: Callable[[Sequence[Any]], HandlerRow]) -> RunPage:
        """The run page, from the page statement's rows (``handler_row`` reads the
        store's handler row off the first ``width`` values)."""
        width = self.width
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
        count=Statement(sql=count_sql, params=params),
        page=Statement(sql=page_sql, params=[*page_params, limit + 1]),
        limit=limit,
        width=len(columns),
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
    return tuple(json.dumps(call.extra) if column == "extra" else getattr(call, column) for column in LLM_CALL_COLUMNS)


def llm_call_of(row: Sequence[Any]) -> LlmCall:
    """An ``LlmCall`` from a row of ``LLM_CALL_COLUMNS``."""
    values = dict(zip(LLM_CALL_COLUMNS, row))
    values["extra"] = json.loads(values["extra"] or "{}")
    return LlmCall(**values)
