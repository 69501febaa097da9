"""The statements both SQL stores run, built once here: each store gives its driver's
parameter mark (``?`` for sqlite3, ``%s`` for psycopg) and executes them.

- ``handler_update``: the ``UPDATE handlers`` of a ``HandlerUpdate``;
- ``list_handlers``: the handlers, filtered by status and workflow;
- ``search_runs`` / ``run_search``: the debugger's run list, searched (``TextIndex``), counted
  up to ``COUNT_CAP`` and paged by keyset (``RunSearch``);
- ``insert_llm_call_sql`` / ``select_llm_calls_sql``: a run's LLM calls, with
  ``llm_call_values`` and ``llm_call_of`` to turn an ``LlmCall`` into a row and back.

What differs between the stores (the schema's types, claims and fencing, notifications)
stays in ``sqlite.py`` and ``postgres.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
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

COUNT_CAP = 10_000
"""Where ``search_runs`` stops counting: more matching runs are reported as ``COUNT_CAP``
with ``RunPage.total_capped`` (a count never scans a whole store of a million runs)."""

MIN_INDEXED_TEXT = 3
"""The shortest text the full-text indexes (trigrams) can look up; shorter texts are
looked for by reading the runs newest first, as the list does."""


Execute = Callable[["Statement"], Sequence[Sequence[Any]]]
"""Runs one statement and returns its rows (a store's own connection)."""

DRIVE_FROM_FOUND = 2000
"""Up to this many runs holding a text, a page is read from those runs (each looked up,
then sorted); with more, the page walks the list's index newest first keeping those among
them, which reads about ``limit * runs / found`` index entries (a covering read)."""


@dataclass(frozen=True, kw_only=True)
class TextIndex:
    """A store's full-text index of the runs' text (id, input, result, error).

    ``find(text, most, execute)`` looks a text up (case-insensitive substring) and returns
    the runs holding it, or ``None`` when more than ``most`` do (it reads no more than that,
    or estimates that so many do); each run by a key the store's ``among`` and ``drive``
    take (the handler id, or the index's own key of the run);
    ``row`` is the same test for one run (the handler ``h`` and its index entry ``i`` of
    the run list's statement), ``row_params`` its parameters.
    The ids ``find`` returns are handed to the list's statements as one parameter
    (``found``), either as the runs to read (``drive``) or as a condition (``among``).
    """

    find: Callable[[str, int, Execute], list[str] | None]
    row: str
    row_params: Callable[[str], list[Any]]
    among: str
    """A condition on the handler ``h`` with one parameter: the runs found (``found``)."""
    drive: str
    """The list's ``FROM`` from the runs found (one parameter, ``found``): the handlers ``h``
    looked up by their keys, in that join order (not a walk of every run)."""
    found: Callable[[list[str]], Any]


def like_pattern(text: str) -> str:
    """``%text%`` for ``LIKE ... ESCAPE '\\'``, lowered, with the user's ``%``, ``_`` and ``\\`` taken literally."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filters(
    query: RunQuery, *, mark: str, text_index: TextIndex, found: list[str] | None, drive: bool = False
) -> tuple[list[str], list[Any]]:
    """The ``WHERE`` conditions of ``query`` and their parameters; the text's runs are
    ``found`` (looked up in the index already: none when the statement ``drive``s from
    them), or each run read is tested."""
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
    if query.text and len(query.text) < MIN_INDEXED_TEXT:
        like = f"LIKE {mark} ESCAPE '\\'"
        where.append(
            f"(LOWER(COALESCE(i.input_text, '')) {like} OR LOWER(COALESCE(h.result, '')) {like} "
            f"OR LOWER(COALESCE(h.error, '')) {like} OR LOWER(h.handler_id) {like})"
        )
        params.extend([like_pattern(query.text)] * 4)
    elif query.text and found is not None and drive:
        pass  # the statement reads the runs found, and only them
    elif query.text and found is not None:
        where.append(text_index.among)
        params.append(text_index.found(found))
    elif query.text:
        where.append(text_index.row)
        params.extend(text_index.row_params(query.text))
    return where, params


_SUMMARY = "i.session_id, COALESCE(i.steps, 0), i.parent_id, i.relation, i.fork_seq, i.input_text"
_BASE = "FROM handlers h LEFT JOIN run_index i ON i.handler_id = h.handler_id"


@dataclass(frozen=True, kw_only=True)
class RunSearch:
    """The two statements behind one page of ``search_runs``: how many runs match, capped
    at ``COUNT_CAP`` (``count``; ``None`` when already known), and one page of them
    (``page``: one row more than ``limit``, which tells whether there is a next page).
    ``width`` is how many handler row columns lead each page row."""

    count: Statement | None
    page: Statement
    limit: int
    width: int

    def answer(self, rows: Sequence[Sequence[Any]], total: int, handler_row: Callable[[Sequence[Any]], HandlerRow]) -> RunPage:
        """The run page, from the page statement's rows (``handler_row`` reads the
        store's handler row off the first ``width`` values) and the capped count."""
        width = self.width
        runs = [
            RunSummary(
                row=handler_row(r[:width]), session_id=r[width], steps=int(r[width + 1]), parent_id=r[width + 2],
                relation=r[width + 3], fork_seq=r[width + 4], input_text=r[width + 5], tokens=int(r[width + 6]),
                cost=None if r[width + 7] is None else float(r[width + 7]), llm_calls=int(r[width + 8]),
            )
            for r in rows[: self.limit]
        ]
        cursor = None
        if len(rows) > self.limit:
            last = runs[-1].row
            cursor = encode_cursor(last.started_at, last.handler_id)
        return RunPage(runs=runs, total=min(total, COUNT_CAP), total_capped=total > COUNT_CAP, next_cursor=cursor)


def run_search(
    query: RunQuery, *, columns: Sequence[str], mark: str, text_index: TextIndex, found: list[str] | None = None,
    known_total: int | None = None,
) -> RunSearch:
    """The statements that answer ``query`` in a store whose handler rows have
    ``columns`` (in ``HandlerRow`` order), whose driver marks parameters with ``mark``
    (``?`` for sqlite3, ``%s`` for psycopg) and whose text index is ``text_index``.
    ``found``: the runs holding the text, looked up in the index already (else each run
    read is tested); ``known_total``: the count is known already (no count statement).
    ``ValueError`` for a bad cursor.

    The page is read newest first (or oldest first) along an index that starts with
    ``started_at``, from the cursor on (keyset pagination: a deep page costs what the
    first one does); several statuses are read each along its own index and merged (one
    index read in time order per status, never a sort of every run of them); the LLM
    totals are summed for the page's runs only. Runs ``found`` in the text index are
    read from their ids (then sorted) when there are at most ``DRIVE_FROM_FOUND`` of
    them, and counted from their ids however many (at most ``COUNT_CAP``).
    """
    counted = found is not None
    few = found is not None and len(found) <= DRIVE_FROM_FOUND
    count = None
    if known_total is None:
        where, params = _filters(query, mark=mark, text_index=text_index, found=found, drive=counted)
        count = Statement(
            sql=f"SELECT COUNT(*) FROM (SELECT 1 {_base(text_index, counted)}"
            + ((" WHERE " + " AND ".join(where)) if where else "") + f" LIMIT {COUNT_CAP + 1}) c",
            params=[*_found_params(text_index, found, counted), *params],
        )
    limit = max(1, min(int(query.limit), MAX_PAGE))
    older = not query.oldest_first
    order = "DESC" if older else "ASC"
    selected = ", ".join(f"h.{column}" for column in columns)

    def page_of(one: RunQuery) -> tuple[str, list[Any]]:
        conditions, values = _filters(one, mark=mark, text_index=text_index, found=found, drive=few)
        if one.cursor:
            started_at, handler_id = decode_cursor(one.cursor)
            op = "<" if older else ">"
            # The first condition is a plain range on the index; the row value picks the exact place.
            conditions.append(f"h.started_at {op}= {mark} AND (h.started_at, h.handler_id) {op} ({mark}, {mark})")
            values.extend([started_at, started_at, handler_id])
        sql = (
            f"SELECT h.handler_id AS handler_id, h.started_at AS started_at {_base(text_index, few)}"
            + ((" WHERE " + " AND ".join(conditions)) if conditions else "")
            + f" ORDER BY h.started_at {order}, h.handler_id {order} LIMIT {mark}"
        )
        return sql, [*_found_params(text_index, found, few), *values, limit + 1]

    statuses = list(query.status or ())
    if len(statuses) > 1 and not few:
        parts = [page_of(replace(query, status=[status])) for status in statuses]
        inner = (
            "SELECT * FROM (" + " UNION ALL ".join(f"SELECT * FROM ({sql}) s{n}" for n, (sql, _) in enumerate(parts))
            + f") u ORDER BY u.started_at {order}, u.handler_id {order} LIMIT {mark}"
        )
        inner_params = [value for _, values in parts for value in values] + [limit + 1]
    else:
        inner, inner_params = page_of(query)
    # The page's ids are chosen first (reading only what the filters need); the rest of
    # each run (its row, index entry, LLM totals) is read for those alone.
    page_sql = (
        f"SELECT {selected}, {_SUMMARY}, "
        "COALESCE((SELECT SUM(c.total_tokens) FROM llm_calls c WHERE c.handler_id = p.handler_id), 0), "
        "(SELECT SUM(c.cost) FROM llm_calls c WHERE c.handler_id = p.handler_id), "
        "(SELECT COUNT(*) FROM llm_calls c WHERE c.handler_id = p.handler_id) "
        f"FROM ({inner}) p JOIN handlers h ON h.handler_id = p.handler_id "
        f"LEFT JOIN run_index i ON i.handler_id = p.handler_id ORDER BY p.started_at {order}, p.handler_id {order}"
    )
    return RunSearch(count=count, page=Statement(sql=page_sql, params=inner_params), limit=limit, width=len(columns))


def _base(text_index: TextIndex, drive: bool) -> str:
    """The ``FROM`` of the list's statements: every run, or the runs found (``drive``)."""
    if drive:
        return f"FROM {text_index.drive} LEFT JOIN run_index i ON i.handler_id = h.handler_id"
    return _BASE


def _found_params(text_index: TextIndex, found: list[str] | None, drive: bool) -> list[Any]:
    return [text_index.found(found)] if drive and found is not None else []


def search_runs(
    query: RunQuery,
    *,
    columns: Sequence[str],
    mark: str,
    text_index: TextIndex,
    execute: Execute,
    handler_row: Callable[[Sequence[Any]], HandlerRow],
) -> RunPage:
    """``RunStore.search_runs`` for a SQL store: ``execute`` runs a statement and returns its rows.

    A text is first looked up in the store's full-text index (``TextIndex.find``), which
    reads at most ``COUNT_CAP + 1`` runs' ids (or estimates that more runs hold it): when it
    is that rare, the page and the count are read from those runs (``run_search``); when
    it is more common, the runs are read newest first and tested one by one
    (``TextIndex.row``), which finds a page's worth quickly precisely because the text is
    common (alone, it counts as ``COUNT_CAP``+; under other filters it is counted so, too). Both ways match the same runs. A text shorter than
    ``MIN_INDEXED_TEXT`` is tested run by run with ``LOWER(...) LIKE`` (correct, but it
    reads the whole store when it is rare: the debugger's API refuses such texts).
    """
    found: list[str] | None = None
    known_total: int | None = None
    if query.text and len(query.text) >= MIN_INDEXED_TEXT:
        found = text_index.find(query.text, COUNT_CAP, execute)
        if found is not None and not found:
            return RunPage()
        alone = RunQuery(text=query.text, limit=query.limit, cursor=query.cursor, oldest_first=query.oldest_first)
        if query == alone:
            # The text is the only filter: the index counted the runs.
            known_total = COUNT_CAP + 1 if found is None else len(found)
    search = run_search(query, columns=columns, mark=mark, text_index=text_index, found=found,
                        known_total=known_total)
    total = int(execute(search.count)[0][0]) if search.count is not None else int(known_total or 0)
    return search.answer(execute(search.page), total, handler_row)


WORKFLOW_NAMES = (
    "WITH RECURSIVE names(name) AS (SELECT MIN(workflow_name) FROM handlers UNION ALL "
    "SELECT (SELECT MIN(workflow_name) FROM handlers WHERE workflow_name > names.name) FROM names "
    "WHERE names.name IS NOT NULL) SELECT name FROM names WHERE name IS NOT NULL"
)
"""The distinct workflow names, sorted, found by skipping along an index that starts with
``workflow_name`` (one seek per name, not a read of every run)."""


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
