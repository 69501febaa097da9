"""The PostgreSQL run store: one database shared by every replica of the server (psycopg 3, sync API).

Same tables as SQLite (``handlers``, ``snapshots``, ``journal``, ``stream``) plus what
replicas need: each ``handlers`` row has an ``owner`` (the replica holding it), a
``fence`` (incremented on every claim) and a ``lease_until`` (set from the database's
clock, so replicas' clocks never matter), and an ``inbox`` holds what clients sent to a
run through any replica until its owner delivers it. Claims use ``FOR UPDATE SKIP
LOCKED``; changes are announced with ``NOTIFY`` on one channel; see ``SharedStore``.

Fencing: every write for a run locks the run's row (``SELECT ... FOR UPDATE``) and
compares its fence with this process's claim in the same transaction, so a replica
whose lease lapsed and was taken over cannot write anything for the run, even if it was
paused mid-write: the new claim waits for (or skips) the row lock, and the old owner's
next write sees the new fence and is refused (``FencedOut``).

Schema versions live in ``workflows_schema``; ``MIGRATIONS`` take a database from each
version to the next in one transaction, under an advisory lock so replicas starting
together migrate once. A database written by a newer version is refused.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Literal, Sequence

from workflows_server.store.base import NewRun, SharedStore
from workflows_server.store.records import (
    Append,
    Claim,
    FencedOut,
    HandlerExists,
    HandlerRow,
    HandlerUpdate,
    InboxItem,
    JournalEntry,
    NewStreamEvent,
    Snapshot,
    StoreError,
    StreamEvent,
    now_iso,
)
from workflows_server.store.queries import IndexEntry, LlmCall, RunIndexUpdate, RunPage, RunQuery
from workflows_server.store.pg_text import COLUMNS, STATISTICS_SQL, TEXT_STATISTICS, TextStatistics
from workflows_server.store.urls import mask_url
from workflows_server.store.sql import (
    WORKFLOW_NAMES,
    Execute,
    Statement,
    TextIndex,
    handler_update,
    like_pattern,
    insert_llm_call_sql,
    list_handlers,
    llm_call_of,
    llm_call_values,
    search_runs,
    select_llm_calls_sql,
)

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.pq import TransactionStatus
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise StoreError(
        "the PostgreSQL store needs psycopg 3: pip install 'otel-workflows-server[postgres]'"
    ) from exc

logger = logging.getLogger("workflows_server.store")

CHANNEL = "workflows_server"
"""The ``NOTIFY`` channel; payloads are ``kind:handler_id`` (kinds: stream, status, inbox, queue)."""
_MIGRATION_LOCK = 0x776F726B666C6F77  # "workflow": one advisory lock id for schema changes

_TEXT_UPSERT = """ON CONFLICT (handler_id) DO UPDATE SET
                input_text = excluded.input_text, result = excluded.result, error = excluded.error;
            RETURN NULL;
        END $$"""
"""The end of the trigger functions that write a run's row of ``search_text`` (migration 4)."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # version 1: runs, their snapshots, journal and stream (SQLite's versions 1 and 2)
    (
        """CREATE TABLE handlers (
            handler_id TEXT PRIMARY KEY,
            workflow_name TEXT NOT NULL,
            run_id TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            result TEXT,
            started_at TEXT NOT NULL,
            updated_at TEXT,
            completed_at TEXT,
            start_event TEXT,
            carrier TEXT NOT NULL DEFAULT '{}',
            epoch INTEGER NOT NULL DEFAULT 0,
            waiting_since TEXT,
            continued INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX handlers_by_status ON handlers (status, workflow_name)",
        """CREATE TABLE snapshots (
            handler_id TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            at TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (handler_id, epoch)
        )""",
        """CREATE TABLE journal (
            position BIGSERIAL PRIMARY KEY,
            handler_id TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            at TEXT NOT NULL,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX journal_by_handler ON journal (handler_id, epoch, position)",
        """CREATE TABLE stream (
            handler_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            at TEXT NOT NULL,
            envelope TEXT NOT NULL,
            internal BOOLEAN NOT NULL DEFAULT FALSE,
            terminal BOOLEAN NOT NULL DEFAULT FALSE,
            PRIMARY KEY (handler_id, sequence)
        )""",
    ),
    # version 2: replicas: claims with leases and fencing numbers, the inbox, retention
    (
        "ALTER TABLE handlers ADD COLUMN owner TEXT",
        "ALTER TABLE handlers ADD COLUMN fence BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE handlers ADD COLUMN lease_until TIMESTAMPTZ",
        "CREATE INDEX handlers_claimable ON handlers (started_at) WHERE status = 'running'",
        "CREATE INDEX handlers_finished ON handlers (completed_at) WHERE status <> 'running'",
        "ALTER TABLE journal ADD COLUMN fence BIGINT",
        """CREATE TABLE inbox (
            id BIGSERIAL PRIMARY KEY,
            handler_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            event TEXT,
            step TEXT,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX inbox_by_handler ON inbox (handler_id, id)",
    ),
    # version 3: the debugger's run index and LLM calls, saved contexts already resumed (SQLite's 3 and 4)
    (
        """CREATE TABLE run_index (
            handler_id TEXT PRIMARY KEY,
            session_id TEXT,
            input_text TEXT,
            steps INTEGER NOT NULL DEFAULT 0,
            parent_id TEXT,
            relation TEXT,
            fork_seq INTEGER
        )""",
        "CREATE INDEX run_index_by_session ON run_index (session_id)",
        "CREATE INDEX handlers_by_start ON handlers (started_at, handler_id)",
        """CREATE TABLE llm_calls (
            id BIGSERIAL PRIMARY KEY,
            handler_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            step TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            span_id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            model TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            total_tokens INTEGER NOT NULL DEFAULT 0,
            cost DOUBLE PRECISION,
            input_text TEXT,
            output_text TEXT,
            error TEXT,
            extra TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX llm_calls_by_handler ON llm_calls (handler_id, started_at)",
        """CREATE TABLE resumed_contexts (
            resume_id TEXT PRIMARY KEY,
            handler_id TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
    ),
    # version 4: a million runs: the list read newest first under each filter, and text search
    # with pg_trgm (SQLite's 5)
    (
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        # waiting_since last: "running, waiting or not" is counted from the index alone.
        "CREATE INDEX handlers_by_status_start ON handlers (status, started_at, handler_id, waiting_since)",
        "CREATE INDEX handlers_by_workflow_start ON handlers (workflow_name, started_at, handler_id)",
        "CREATE INDEX handlers_waiting ON handlers (started_at, handler_id) WHERE waiting_since IS NOT NULL",
        "CREATE INDEX run_index_by_parent ON run_index (parent_id)",
        """CREATE TABLE search_text (
            handler_id TEXT PRIMARY KEY,
            input_text TEXT,
            result TEXT,
            error TEXT
        )""",
        "INSERT INTO search_text (handler_id, input_text, result, error) "
        "SELECT h.handler_id, i.input_text, h.result, h.error FROM handlers h "
        "LEFT JOIN run_index i ON i.handler_id = h.handler_id",
        "CREATE INDEX search_text_trigrams ON search_text USING gin "
        "(handler_id gin_trgm_ops, input_text gin_trgm_ops, result gin_trgm_ops, error gin_trgm_ops)",
        # search_text follows the runs' id, input, result and error, whichever statement changes them.
        """CREATE FUNCTION workflows_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                DELETE FROM search_text WHERE handler_id = OLD.handler_id;
                RETURN NULL;
            END IF;
            INSERT INTO search_text (handler_id, input_text, result, error)
                SELECT h.handler_id, i.input_text, h.result, h.error FROM handlers h
                LEFT JOIN run_index i ON i.handler_id = h.handler_id WHERE h.handler_id = NEW.handler_id
            """ + _TEXT_UPSERT,
        "CREATE TRIGGER search_on_delete AFTER DELETE ON handlers "
        "FOR EACH ROW EXECUTE FUNCTION workflows_search_refresh()",
        # New runs, once per statement: create_handlers inserts thousands in one.
        """CREATE FUNCTION workflows_search_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO search_text (handler_id, input_text, result, error)
                SELECT n.handler_id, i.input_text, n.result, n.error FROM added n
                LEFT JOIN run_index i ON i.handler_id = n.handler_id
            """ + _TEXT_UPSERT,
        "CREATE TRIGGER search_on_insert AFTER INSERT ON handlers REFERENCING NEW TABLE AS added "
        "FOR EACH STATEMENT EXECUTE FUNCTION workflows_search_added()",
        "CREATE TRIGGER search_on_update AFTER UPDATE OF result, error ON handlers FOR EACH ROW "
        "WHEN (OLD.result IS DISTINCT FROM NEW.result OR OLD.error IS DISTINCT FROM NEW.error) "
        "EXECUTE FUNCTION workflows_search_refresh()",
        "CREATE TRIGGER search_on_index AFTER INSERT ON run_index FOR EACH ROW WHEN (NEW.input_text IS NOT NULL) "
        "EXECUTE FUNCTION workflows_search_refresh()",
        "CREATE TRIGGER search_on_reindex AFTER UPDATE OF input_text ON run_index FOR EACH ROW "
        "WHEN (OLD.input_text IS DISTINCT FROM NEW.input_text) EXECUTE FUNCTION workflows_search_refresh()",
    ),
    # version 5: a ten times larger statistics sample of the searched text, from which a
    # text search picks its way (store/pg_text.py); analyzed now, then by autovacuum
    (
        *(f"ALTER TABLE search_text ALTER COLUMN {column} SET STATISTICS {TEXT_STATISTICS}" for column in COLUMNS),
        "ANALYZE search_text",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "handler_id, workflow_name, run_id, status, error, result, started_at, updated_at, completed_at, "
    "start_event, carrier, epoch, waiting_since, continued, owner, fence"
)
_COLUMN_NAMES = tuple(column.strip() for column in _COLUMNS.split(","))
_MARK = "%s"  # psycopg's parameter mark
_INSERT_LLM_CALL = insert_llm_call_sql(_MARK)
_SELECT_LLM_CALLS = select_llm_calls_sql(_MARK)
_INDEX_RUN = (
    "INSERT INTO run_index AS r (handler_id, session_id, input_text, steps, parent_id, relation, fork_seq) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (handler_id) DO UPDATE SET "
    "session_id = COALESCE(excluded.session_id, r.session_id), "
    "input_text = COALESCE(excluded.input_text, r.input_text), "
    "steps = CASE WHEN %s::boolean THEN excluded.steps ELSE r.steps + excluded.steps END, "
    "parent_id = COALESCE(excluded.parent_id, r.parent_id), "
    "relation = COALESCE(excluded.relation, r.relation), "
    "fork_seq = COALESCE(excluded.fork_seq, r.fork_seq)"
)
# pg_trgm's GIN index answers ILIKE '%text%' on each column (texts of 3 characters or more
# are looked up by their trigrams; the matches are checked against the text itself).
_HOLDS = (
    "handler_id ILIKE %s ESCAPE '\\' OR input_text ILIKE %s ESCAPE '\\' OR result ILIKE %s ESCAPE '\\' "
    "OR error ILIKE %s ESCAPE '\\'"
)
# The index is given a part of the text per column (pg_text.TextStatistics.lookup); the
# rows it finds are then tested against the whole text. MATERIALIZED: the planner must
# not merge the two tests into the index's.
_LOOKUP = (
    f"WITH c AS MATERIALIZED (SELECT handler_id, input_text, result, error FROM search_text WHERE {_HOLDS}) "
    f"SELECT handler_id FROM c WHERE {_HOLDS} LIMIT %s"
)
_SCAN = f"SELECT handler_id FROM search_text WHERE {_HOLDS} LIMIT %s"
ESTIMATED_MORE = 3
"""A text the statistics put in this many times ``COUNT_CAP`` runs or more is taken to be in
more than ``COUNT_CAP`` (the count says "10 000+") without reading its runs: with the
statistics' sample of 1 000 values a column (schema version 5), a text in fewer than
``COUNT_CAP`` runs of a million is estimated at three times as many practically never."""
VERY_COMMON = 0.3
"""The share of runs (from the statistics) from which a text is looked for by reading
``search_text`` in order rather than through the trigram index (see ``_find_text``)."""



def _array_literal(values: list[str]) -> str:
    """``values`` as one ``text[]`` literal: thousands of ids adapt faster so than as a list."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _text_index(find: Callable[[str, int, Execute], list[str] | None]) -> TextIndex:
    """The store's ``TextIndex``; ``find`` is the store's own (it keeps the statistics)."""
    return TextIndex(
        find=find,
        row="(h.handler_id ILIKE %s ESCAPE '\\' OR i.input_text ILIKE %s ESCAPE '\\' "
            "OR h.result ILIKE %s ESCAPE '\\' OR h.error ILIKE %s ESCAPE '\\')",
        row_params=lambda text: [like_pattern(text)] * 4,
        among="h.handler_id = ANY(%s::text[])",
        drive="unnest(%s::text[]) AS f(value) JOIN handlers h ON h.handler_id = f.value",
        found=_array_literal,
    )


_TABLES = ("handlers", "snapshots", "journal", "stream", "inbox", "run_index", "llm_calls", "resumed_contexts")
"""Every table with rows of a run (by ``handler_id``): deleting or purging a run empties each."""


def migrate(connection: psycopg.Connection[Any], url: str) -> int:
    """Bring the database's schema to ``SCHEMA_VERSION`` in one transaction; return the version it had."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        connection.execute("CREATE TABLE IF NOT EXISTS workflows_schema (version INTEGER NOT NULL)")
        found_row = connection.execute("SELECT version FROM workflows_schema").fetchone()
        found = int(found_row[0]) if found_row else 0
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{url} has schema version {found}, newer than this server's {SCHEMA_VERSION}: "
                "upgrade otel-workflows-server to open it"
            )
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                try:
                    connection.execute(statement)
                except psycopg.Error as exc:
                    if "pg_trgm" not in statement:
                        raise
                    raise StoreError(
                        f"{url} needs the pg_trgm extension for text search, which this user cannot create ({exc}): "
                        "have a superuser run CREATE EXTENSION pg_trgm in this database (it ships with PostgreSQL: "
                        "Debian's postgresql package, postgresql-contrib elsewhere)"
                    ) from exc
        if found_row is None:
            connection.execute("INSERT INTO workflows_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        elif found != SCHEMA_VERSION:
            connection.execute("UPDATE workflows_schema SET version = %s", (SCHEMA_VERSION,))
    return found


def default_owner() -> str:
    """A replica id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class PostgresStore(SharedStore):
    """A ``SharedStore`` in a PostgreSQL database (``postgresql://user:password@host:port/db``).

    ``owner`` names this replica in its claims (default: host-pid-random). Opening the
    store creates or upgrades its tables. One connection serves the writes (guarded by a
    lock: tests also write from other threads than the worker's); each thread that reads
    has a connection of its own (``read_threads`` of them in the server); ``listen``
    opens its own.
    """

    read_threads = 4

    def __init__(self, url: str, *, owner: str | None = None, connect_timeout: float = 10.0) -> None:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        if url.startswith("postgresql+"):
            url = "postgresql://" + url.split("://", 1)[1]
        self.url = mask_url(url)
        self._dsn = url
        self.owner = owner or default_owner()
        self._connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._fences: dict[str, int] = {}
        self._staged_acks: dict[str, list[int]] = {}
        self._finished: set[str] = set()
        """Held runs whose end this replica wrote: their row is released already (see ``_apply``)."""
        self.rejections = 0
        """Writes refused because another replica had claimed the run (fencing)."""
        self._readers = threading.local()
        self._reader_connections: list[psycopg.Connection[Any]] = []
        self._text_statistics = TextStatistics()
        self._text_index = _text_index(self._find_text)
        self._db = self._connect()
        try:
            self.migrated_from = migrate(self._db, self.url)
        except psycopg.Error as exc:
            raise StoreError(f"cannot prepare the PostgreSQL store {self.url}: {exc}") from exc

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            db = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout)),
                application_name=f"workflows-server {self.owner}"[:63],
            )
            # A paused replica must not keep a row locked mid-transaction forever: the
            # server ends such a session, and the lock with it.
            db.execute("SET idle_in_transaction_session_timeout = '10s'")
            db.execute("SET lock_timeout = '10s'")
            return db
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL store {self.url}: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        # Pipeline mode: BEGIN, the statements and COMMIT go out without waiting for each
        # other's answers, so a transaction costs one round trip to the database, plus one
        # per result read before the end (a distant database pays for each).
        with self._lock:
            db = self._db
            if db.closed or db.broken:
                db = self._db = self._connect()
            try:
                with db.pipeline():
                    db.execute("BEGIN")
                    try:
                        yield db
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
            except (pg_errors.OperationalError, psycopg.InterfaceError) as exc:
                raise StoreError(f"the PostgreSQL store {self.url} failed: {exc}") from exc
            finally:
                # A statement that failed skipped the rest of the pipeline, COMMIT included.
                if not db.closed and db.info.transaction_status != TransactionStatus.IDLE:
                    try:
                        db.execute("ROLLBACK")
                    except psycopg.Error:
                        pass

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        # One statement in autocommit mode, on the calling thread's own connection: reads
        # run on the worker's reading threads (``read_threads``) while a flush writes.
        db: psycopg.Connection[Any] | None = getattr(self._readers, "db", None)
        if db is None or db.closed or db.broken:
            db = self._reader()
        try:
            return db.execute(sql, params).fetchall()
        except (pg_errors.OperationalError, psycopg.InterfaceError) as exc:
            if not (db.closed or db.broken):
                raise StoreError(f"the PostgreSQL store {self.url} failed: {exc}") from exc
        # The connection was lost (the database restarted, or cut it) since its last read:
        # a read changes nothing, so it is tried once more on a new one.
        try:
            return self._reader().execute(sql, params).fetchall()
        except (pg_errors.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreError(f"the PostgreSQL store {self.url} failed: {exc}") from exc

    def _reader(self) -> psycopg.Connection[Any]:
        """A new reading connection for the calling thread (its lost one, if any, closed)."""
        lost: psycopg.Connection[Any] | None = getattr(self._readers, "db", None)
        if lost is not None:
            lost.close()
        db = self._readers.db = self._connect()
        with self._lock:
            self._reader_connections = [c for c in self._reader_connections if not c.closed]
            self._reader_connections.append(db)
        return db

    # ------------------------------------------------------------------ fencing
    def _guard(self, db: psycopg.Connection[Any], handler_id: str) -> None:
        refused = self._guard_many(db, {handler_id})
        if refused:
            raise refused[handler_id]

    def _guard_many(self, db: psycopg.Connection[Any], handler_ids: set[str]) -> dict[str, FencedOut]:
        """Lock the rows of ``handler_ids`` this replica still holds; the others, refused with why."""
        refused = self._unheld(handler_ids)
        held = sorted(handler_ids & self._fences.keys())
        if held:
            refused.update(self._fenced_out(held, self._lock_rows(db, held).fetchall()))
        return refused

    def _unheld(self, handler_ids: set[str]) -> dict[str, FencedOut]:
        """The runs of ``handler_ids`` this replica holds no claim on, refused."""
        refused: dict[str, FencedOut] = {}
        for handler_id in handler_ids - self._fences.keys():
            self.rejections += 1
            refused[handler_id] = FencedOut(handler_id, f"replica {self.owner} holds no claim on it")
        return refused

    @staticmethod
    def _lock_rows(db: psycopg.Connection[Any], held: list[str]) -> psycopg.Cursor[Any]:
        # Locked in one order, so two replicas' flushes never deadlock on each other's rows.
        return db.execute(
            "SELECT handler_id, fence FROM handlers WHERE handler_id = ANY(%s) ORDER BY handler_id FOR UPDATE",
            (held,),
        )

    def _fenced_out(self, held: list[str], locked: list[tuple[Any, ...]]) -> dict[str, FencedOut]:
        """Of the ``held`` runs, those whose locked row (``(handler_id, fence)``) no longer has this replica's fence."""
        found = dict(locked)
        refused: dict[str, FencedOut] = {}
        for handler_id in held:
            fence = found.get(handler_id)
            mine = self._fences[handler_id]
            if fence is None or int(fence) != mine:
                self._fences.pop(handler_id, None)
                self._staged_acks.pop(handler_id, None)
                self.rejections += 1
                now = "it no longer exists" if fence is None else f"another replica claimed it (claim {fence})"
                refused[handler_id] = FencedOut(handler_id, f"replica {self.owner}'s claim {mine} is over: {now}")
        return refused

    @staticmethod
    def _notify(db: psycopg.Connection[Any], kind: str, handler_id: str) -> None:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{kind}:{handler_id}"))

    # ------------------------------------------------------------------ handlers
    @staticmethod
    def _row(values: Sequence[Any]) -> HandlerRow:
        (handler_id, workflow_name, run_id, status, error, result, started_at, updated_at, completed_at,
         start_event, carrier, epoch, waiting_since, continued, owner, fence) = values
        return HandlerRow(
            handler_id=handler_id, workflow_name=workflow_name, run_id=run_id, status=status, error=error,
            result=json.loads(result) if result else None, started_at=started_at, updated_at=updated_at,
            completed_at=completed_at, start_event=start_event, carrier=json.loads(carrier or "{}"), epoch=epoch,
            waiting_since=waiting_since, continued=continued, owner=owner, fence=int(fence),
        )

    def create_handler(self, row: HandlerRow, base: dict[str, Any]) -> None:
        self.create_handlers([NewRun(row=row, base=base)])

    def create_handlers(self, runs: Sequence[NewRun]) -> None:
        self._create(runs)

    def create_claimed(self, row: HandlerRow, base: dict[str, Any], *, lease_seconds: float) -> Claim:
        claimed = self._create([NewRun(row=row, base=base)], lease_seconds=lease_seconds)
        assert claimed is not None
        (claim,) = self._took(claimed.fetchall())
        return claim

    def _create(self, runs: Sequence[NewRun], lease_seconds: float | None = None) -> psycopg.Cursor[Any] | None:
        """Insert ``runs``; with ``lease_seconds``, claimed by this replica in the same transaction
        (the claim's cursor is returned, to be read: it holds ``_took``'s columns)."""
        now = now_iso()
        claimed = None
        try:
            with self._tx() as db, db.cursor() as cursor:
                # Index entries first: the handler's trigger then indexes the run's text once.
                cursor.executemany(
                    _INDEX_RUN, [self._index_values(run.row.handler_id, run.index) for run in runs if run.index]
                )
                rows = [run.row for run in runs]
                # One statement per table (arrays unnested), so the text-index trigger runs once.
                cursor.execute(
                    "INSERT INTO handlers (handler_id, workflow_name, run_id, status, error, result, started_at, "
                    "updated_at, completed_at, start_event, carrier, epoch, waiting_since, continued) "
                    "SELECT a, b, c, d, e, f, g, h, i, j, k, 0, l, m FROM unnest("
                    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
                    "%s::text[], %s::text[], %s::text[], %s::text[], %s::int[]) AS t(a, b, c, d, e, f, g, h, i, j, k, l, m)",
                    [
                        [r.handler_id for r in rows], [r.workflow_name for r in rows], [r.run_id for r in rows],
                        [r.status for r in rows], [r.error for r in rows],
                        [None if r.result is None else json.dumps(r.result) for r in rows],
                        [r.started_at for r in rows], [r.updated_at or r.started_at for r in rows],
                        [r.completed_at for r in rows], [r.start_event for r in rows],
                        [json.dumps(r.carrier) for r in rows], [r.waiting_since for r in rows],
                        [r.continued for r in rows],
                    ],
                )
                cursor.execute(
                    "INSERT INTO snapshots (handler_id, epoch, at, payload) "
                    "SELECT id, 0, %s, payload FROM unnest(%s::text[], %s::text[]) AS t(id, payload)",
                    [now, [r.handler_id for r in rows], [json.dumps(run.base) for run in runs]],
                )
                if lease_seconds is not None:
                    claimed = db.execute(
                        "UPDATE handlers SET owner = %s, fence = fence + 1, lease_until = now() + make_interval(secs => %s) "
                        "WHERE handler_id = ANY(%s) RETURNING handler_id, workflow_name, fence, NULL, false",
                        (self.owner, lease_seconds, [r.handler_id for r in rows]),
                    )
                else:
                    queued = next((run.row.handler_id for run in runs if run.row.status == "running"), None)
                    if queued is not None:
                        self._notify(db, "queue", queued)  # one note wakes every replica's claim loop
        except pg_errors.UniqueViolation as exc:
            if len(runs) == 1:
                raise HandlerExists(f"a handler with id {runs[0].row.handler_id!r} already exists") from None
            raise HandlerExists(f"one of the {len(runs)} handlers' ids is taken ({exc}); none was written") from None
        return claimed

    def restart_handler(self, row: HandlerRow, base: dict[str, Any]) -> None:
        with self._tx() as db:
            found = db.execute(
                "SELECT epoch, status FROM handlers WHERE handler_id = %s FOR UPDATE", (row.handler_id,)
            ).fetchone()
            if found is None or found[1] == "running":
                raise HandlerExists(f"handler {row.handler_id!r} is running: it cannot start again")
            epoch = int(found[0]) + 1
            now = now_iso()
            db.execute(
                "UPDATE handlers SET run_id = %s, status = 'running', error = NULL, result = NULL, started_at = %s, "
                "updated_at = %s, completed_at = NULL, start_event = %s, carrier = '{}', epoch = %s, "
                "waiting_since = NULL, owner = NULL, lease_until = NULL WHERE handler_id = %s",
                (row.run_id, now, now, row.start_event, epoch, row.handler_id),
            )
            db.execute(
                "INSERT INTO snapshots (handler_id, epoch, at, payload) VALUES (%s, %s, %s, %s)",
                (row.handler_id, epoch, now, json.dumps(base)),
            )
            self._notify(db, "queue", row.handler_id)

    def claim_resume(self, resume_id: str, handler_id: str) -> str | None:
        with self._tx() as db:
            found = db.execute(
                "INSERT INTO resumed_contexts (resume_id, handler_id, at) VALUES (%s, %s, %s) "
                "ON CONFLICT (resume_id) DO NOTHING RETURNING handler_id",
                (resume_id, handler_id, now_iso()),
            ).fetchone()
            if found is not None:
                return None
            taken = db.execute("SELECT handler_id FROM resumed_contexts WHERE resume_id = %s", (resume_id,)).fetchone()
        return None if taken is None else str(taken[0])

    def get_handler(self, handler_id: str) -> HandlerRow | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM handlers WHERE handler_id = %s", (handler_id,))
        return self._row(rows[0]) if rows else None

    def list_handlers(
        self, *, status: Sequence[str] | None = None, workflow_name: Sequence[str] | None = None
    ) -> list[HandlerRow]:
        query = list_handlers(columns=_COLUMN_NAMES, mark=_MARK, status=status, workflow_name=workflow_name)
        return [self._row(r) for r in self._read(query.sql, query.params)]

    def _apply(self, db: psycopg.Connection[Any], handler_id: str, update: HandlerUpdate, fence: int | None = None) -> None:
        # A finished run is held by no one: its claim ends with it. With ``fence``, the row
        # changes only if it still has it.
        statement = handler_update(
            handler_id, update, mark=_MARK, when_finished=("waiting_since = NULL", "owner = NULL", "lease_until = NULL")
        )
        if fence is None:
            db.execute(statement.sql, statement.params)
        else:
            db.execute(f"{statement.sql} AND fence = {_MARK}", [*statement.params, fence])
        if update.status is not None:
            self._notify(db, "status", handler_id)

    def update_handler(self, handler_id: str, update: HandlerUpdate) -> None:
        with self._tx() as db:
            self._guard(db, handler_id)
            self._apply(db, handler_id, update)

    def delete_handler(self, handler_id: str) -> bool:
        with self._tx() as db:
            deleted = db.execute("DELETE FROM handlers WHERE handler_id = %s RETURNING 1", (handler_id,))
            for table in _TABLES[1:]:
                db.execute(f"DELETE FROM {table} WHERE handler_id = %s", (handler_id,))
            self._notify(db, "status", handler_id)
        self._fences.pop(handler_id, None)
        # Read after the commit: in pipeline mode a result is there once the transaction's answers are.
        return bool(deleted.fetchall())

    def purge_finished(self, before: str, *, limit: int = 500) -> int:
        with self._tx() as db:
            ids = [
                r[0] for r in db.execute(
                    "DELETE FROM handlers WHERE handler_id IN (SELECT handler_id FROM handlers "
                    "WHERE status <> 'running' AND completed_at IS NOT NULL AND completed_at < %s "
                    "ORDER BY completed_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING handler_id",
                    (before, limit),
                ).fetchall()
            ]
            if ids:
                for table in _TABLES[1:]:
                    db.execute(f"DELETE FROM {table} WHERE handler_id = ANY(%s)", (ids,))
        return len(ids)

    # ------------------------------------------------------------------ journal and snapshots
    @staticmethod
    def _insert_event(
        db: psycopg.Connection[Any], handler_id: str, event: NewStreamEvent, at: str, fence: int | None = None
    ) -> psycopg.Cursor[Any]:
        # Returns the cursor unread: in pipeline mode its sequence is read after the commit.
        # With ``fence``, nothing is inserted unless the run's row still has it.
        held = f" HAVING EXISTS (SELECT 1 FROM handlers WHERE handler_id = {_MARK} AND fence = {_MARK})" if fence is not None else ""
        return db.execute(
            "INSERT INTO stream (handler_id, sequence, at, envelope, internal, terminal) "
            f"SELECT %s, COALESCE(MAX(sequence), -1) + 1, %s, %s, %s, %s FROM stream WHERE handler_id = %s{held} "
            "RETURNING sequence",
            (handler_id, at, json.dumps(event.envelope), event.internal, event.terminal, handler_id,
             *((handler_id, fence) if fence is not None else ())),
        )

    def append_many(self, entries: Sequence[Append], index: Sequence[IndexEntry] = ()) -> list[int | None | StoreError]:
        at = now_iso()
        outcomes: list[int | None | StoreError] = [None] * len(entries)
        ids = {e.handler_id for e in entries}
        refused = self._unheld(ids)
        held = sorted(ids - refused.keys())
        fences = {handler_id: self._fences[handler_id] for handler_id in held}
        written = [i for i, e in enumerate(entries) if e.handler_id in fences]
        sequences: dict[int, psycopg.Cursor[Any]] = {}
        # One round trip: the flush is sent whole (``_tx``), its rows locked first and every
        # write made on condition that the run's row still has this replica's fence; a run
        # taken over meanwhile gets nothing written, and is told so once the answers are read.
        with self._tx() as db:
            locked = self._lock_rows(db, held) if held else None
            if written:
                db.cursor().executemany(
                    "INSERT INTO journal (handler_id, epoch, at, record, fence) SELECT %s, %s, %s, %s, %s "
                    "WHERE EXISTS (SELECT 1 FROM handlers WHERE handler_id = %s AND fence = %s)",
                    [
                        (e.handler_id, e.epoch, at, json.dumps(e.record), fences[e.handler_id],
                         e.handler_id, fences[e.handler_id])
                        for e in (entries[i] for i in written)
                    ],
                )
            notified: set[str] = set()
            for i in written:
                entry = entries[i]
                fence = fences[entry.handler_id]
                if entry.event is not None:
                    sequences[i] = self._insert_event(db, entry.handler_id, entry.event, at, fence)
                    notified.add(entry.handler_id)
                if entry.update is not None:
                    self._apply(db, entry.handler_id, entry.update, fence)
            for handler_id in notified:
                self._notify(db, "stream", handler_id)
            for handler_id in held:
                acks = self._staged_acks.pop(handler_id, None)
                if acks:
                    db.execute(
                        "DELETE FROM inbox WHERE id = ANY(%s) AND EXISTS "
                        "(SELECT 1 FROM handlers WHERE handler_id = %s AND fence = %s)",
                        (acks, handler_id, fences[handler_id]),
                    )
                    self._notify(db, "inbox", handler_id)
            for item in index:
                db.execute(_INDEX_RUN, self._index_values(item.handler_id, item.update))
        if locked is not None:
            refused.update(self._fenced_out(held, locked.fetchall()))
        for i, entry in enumerate(entries):
            if entry.handler_id in refused:
                outcomes[i] = refused[entry.handler_id]
                continue
            if entry.update is not None and entry.update.status not in (None, "running"):
                self._finished.add(entry.handler_id)
            if i in sequences:
                row = sequences[i].fetchone()
                assert row is not None
                outcomes[i] = int(row[0])
        return outcomes

    def begin_epoch(self, handler_id: str, payload: dict[str, Any], *, waiting: bool, continued: bool = False) -> int:
        now = now_iso()
        with self._tx() as db:
            self._guard(db, handler_id)
            found = db.execute(
                "UPDATE handlers SET epoch = epoch + 1, waiting_since = %s, updated_at = %s, "
                "continued = continued + %s, start_event = NULL WHERE handler_id = %s RETURNING epoch",
                (now if waiting else None, now, int(continued), handler_id),
            ).fetchone()
            assert found is not None
            epoch = int(found[0])
            db.execute(
                "INSERT INTO snapshots (handler_id, epoch, at, payload) VALUES (%s, %s, %s, %s)",
                (handler_id, epoch, now, json.dumps(payload)),
            )
        return epoch

    def set_waiting(self, handler_id: str, waiting: bool) -> None:
        with self._tx() as db:
            self._guard(db, handler_id)
            db.execute(
                "UPDATE handlers SET waiting_since = %s, continued = continued + %s WHERE handler_id = %s",
                (now_iso() if waiting else None, 0 if waiting else 1, handler_id),
            )

    def latest_snapshot(self, handler_id: str) -> Snapshot | None:
        rows = self._read(
            "SELECT epoch, at, payload FROM snapshots WHERE handler_id = %s ORDER BY epoch DESC LIMIT 1",
            (handler_id,),
        )
        return Snapshot(epoch=rows[0][0], at=rows[0][1], payload=json.loads(rows[0][2])) if rows else None

    def snapshots(self, handler_id: str) -> list[Snapshot]:
        rows = self._read(
            "SELECT epoch, at, payload FROM snapshots WHERE handler_id = %s ORDER BY epoch", (handler_id,)
        )
        return [Snapshot(epoch=e, at=at, payload=json.loads(p)) for e, at, p in rows]

    def journal(self, handler_id: str, *, epoch: int | None = None) -> list[JournalEntry]:
        sql = "SELECT position, epoch, at, record, fence FROM journal WHERE handler_id = %s"
        params: list[Any] = [handler_id]
        if epoch is not None:
            sql += " AND epoch = %s"
            params.append(epoch)
        rows = self._read(sql + " ORDER BY position", params)
        return [
            JournalEntry(position=p, epoch=e, at=at, record=json.loads(r), fence=f) for p, e, at, r, f in rows
        ]

    # ------------------------------------------------------------------ stream
    def add_stream_event(self, handler_id: str, event: NewStreamEvent, update: HandlerUpdate | None = None) -> int:
        with self._tx() as db:
            self._guard(db, handler_id)
            inserted = self._insert_event(db, handler_id, event, now_iso())
            self._notify(db, "stream", handler_id)
            if update is not None:
                self._apply(db, handler_id, update)
        found = inserted.fetchone()
        assert found is not None
        return int(found[0])

    def stream(self, handler_id: str, *, after: int = -1, limit: int = 1000) -> list[StreamEvent]:
        rows = self._read(
            "SELECT sequence, at, envelope, internal, terminal FROM stream "
            "WHERE handler_id = %s AND sequence > %s ORDER BY sequence LIMIT %s",
            (handler_id, after, limit),
        )
        return [
            StreamEvent(sequence=s, at=at, envelope=json.loads(env), internal=bool(i), terminal=bool(t))
            for s, at, env, i, t in rows
        ]

    def last_sequence(self, handler_id: str) -> int:
        rows = self._read("SELECT COALESCE(MAX(sequence), -1) FROM stream WHERE handler_id = %s", (handler_id,))
        return int(rows[0][0])

    # ------------------------------------------------------------------ debugger queries
    # Written by any replica (the index and LLM calls describe a run; they are not its
    # journal), so they are not fenced.
    @staticmethod
    def _index_values(handler_id: str, update: RunIndexUpdate) -> tuple[Any, ...]:
        return (
            handler_id, update.session_id, update.input_text, update.add_steps, update.parent_id,
            update.relation, update.fork_seq, bool(update.reset_steps),
        )

    def index_run(self, handler_id: str, update: RunIndexUpdate) -> None:
        with self._tx() as db:
            db.execute(_INDEX_RUN, self._index_values(handler_id, update))

    def search_runs(self, query: RunQuery) -> RunPage:
        # On the calling thread's reading connection (``_read``): a search never holds up a write.
        return search_runs(
            query, columns=_COLUMN_NAMES, mark=_MARK, text_index=self._text_index, handler_row=self._row,
            execute=lambda statement: self._read(statement.sql, statement.params),
        )

    def _find_text(self, text: str, most: int, execute: Execute) -> list[str] | None:
        """``TextIndex.find``: the runs whose text holds ``text`` (``None``: more than ``most``).

        A GIN index answers with every matching row at once (a bitmap, whatever the
        ``LIMIT``) and reads the list of every trigram it is given: cheap for a rare text
        looked up by its rarer trigrams (``pg_text``), but a text found in nearly every
        run reads lists of a million entries (0.2 s). Reading ``search_text`` in order
        stops at ``most + 1`` matches: cheap for such a text, far too slow for a rarer
        one (the planner, which prices ``ILIKE`` low, picks it for texts in 2 % of the
        runs: 1 s). So the statistics pick the way: the index unless the text is in
        ``VERY_COMMON`` of the runs.
        """
        statistics = self._text_statistics
        if statistics.stale():
            statistics.load(execute(Statement(sql=STATISTICS_SQL, params=[])))
        whole = [like_pattern(text)] * 4
        parts = [like_pattern(part) for part in statistics.lookup(text)]
        share = statistics.share(text)
        if share * statistics.rows >= ESTIMATED_MORE * most:
            return None  # clearly more than ``most``: counting them would read them all
        if share >= VERY_COMMON:
            rows = execute(Statement(sql=_SCAN, params=[*whole, most + 1]))
        else:
            # For this statement only (reads run on this thread's own connection: nothing else runs between).
            [(before, _)] = execute(Statement(
                sql="SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', false)", params=[]))
            try:
                if parts == whole:
                    rows = execute(Statement(sql=_SCAN, params=[*whole, most + 1]))
                else:
                    rows = execute(Statement(sql=_LOOKUP, params=[*parts, *whole, most + 1]))
            finally:
                execute(Statement(sql="SELECT set_config('enable_seqscan', %s, false)", params=[before]))
        return None if len(rows) > most else [str(r[0]) for r in rows]

    def workflow_names(self) -> list[str]:
        return [r[0] for r in self._read(WORKFLOW_NAMES)]

    def add_llm_call(self, call: LlmCall) -> None:
        with self._tx() as db:
            db.execute(_INSERT_LLM_CALL, llm_call_values(call))

    def llm_calls(self, handler_id: str) -> list[LlmCall]:
        return [llm_call_of(r) for r in self._read(_SELECT_LLM_CALLS, (handler_id,))]

    # ------------------------------------------------------------------ claims
    def _took(self, rows: list[tuple[Any, ...]]) -> list[Claim]:
        claims = []
        for handler_id, workflow_name, fence, previous, waiting in rows:
            self._fences[handler_id] = int(fence)
            claims.append(Claim(
                handler_id=handler_id, workflow_name=workflow_name, fence=int(fence), previous_owner=previous,
                waiting=bool(waiting),
            ))
        return claims

    def claim(self, *, workflows: Sequence[str], limit: int, lease_seconds: float) -> list[Claim]:
        if limit <= 0 or not workflows:
            return []
        with self._tx() as db:  # its answer is read after the commit: one round trip
            taken = db.execute(
                """WITH candidates AS (
                    SELECT h.handler_id, h.owner AS previous, h.waiting_since IS NOT NULL AS waiting
                    FROM handlers h
                    WHERE h.status = 'running' AND h.workflow_name = ANY(%(workflows)s)
                      AND (
                        (h.owner IS NULL AND (h.waiting_since IS NULL
                                              OR EXISTS (SELECT 1 FROM inbox i WHERE i.handler_id = h.handler_id)))
                        OR (h.owner IS NOT NULL AND h.owner <> %(owner)s AND h.lease_until < now())
                      )
                    ORDER BY h.started_at
                    LIMIT %(limit)s
                    FOR UPDATE OF h SKIP LOCKED
                )
                UPDATE handlers h SET owner = %(owner)s, fence = h.fence + 1,
                    lease_until = now() + make_interval(secs => %(lease)s)
                FROM candidates c WHERE h.handler_id = c.handler_id
                RETURNING h.handler_id, h.workflow_name, h.fence, c.previous, c.waiting""",
                {"workflows": list(workflows), "owner": self.owner, "limit": limit, "lease": lease_seconds},
            )
        return self._took(taken.fetchall())

    def claim_one(self, handler_id: str, *, lease_seconds: float) -> Claim | None:
        with self._tx() as db:  # its answer is read after the commit: one round trip
            taken = db.execute(
                """WITH candidates AS (
                    SELECT h.handler_id, h.owner AS previous, h.waiting_since IS NOT NULL AS waiting
                    FROM handlers h
                    WHERE h.handler_id = %(id)s AND h.status = 'running'
                      AND (h.owner IS NULL OR (h.owner <> %(owner)s AND h.lease_until < now()))
                    FOR UPDATE OF h SKIP LOCKED
                )
                UPDATE handlers h SET owner = %(owner)s, fence = h.fence + 1,
                    lease_until = now() + make_interval(secs => %(lease)s)
                FROM candidates c WHERE h.handler_id = c.handler_id
                RETURNING h.handler_id, h.workflow_name, h.fence, c.previous, c.waiting""",
                {"id": handler_id, "owner": self.owner, "lease": lease_seconds},
            )
        found = self._took(taken.fetchall())
        return found[0] if found else None

    def renew(self, *, lease_seconds: float) -> list[str]:
        with self._lock:
            held = dict(self._fences)
            if not held:
                return []
            with self._tx() as db:
                renewed = db.execute(
                    "UPDATE handlers h SET lease_until = CASE WHEN h.status = 'running' "
                    "THEN now() + make_interval(secs => %s) END "
                    "FROM unnest(%s::text[], %s::bigint[]) AS f(id, fence) "
                    "WHERE h.handler_id = f.id AND h.fence = f.fence RETURNING h.handler_id",
                    (lease_seconds, list(held), list(held.values())),
                )
            kept = {r[0] for r in renewed.fetchall()}
            lost = [handler_id for handler_id in held if handler_id not in kept]
            for handler_id in lost:
                if self._fences.get(handler_id) == held[handler_id]:
                    del self._fences[handler_id]
            return lost

    def unclaim(self, handler_id: str) -> None:
        with self._lock:
            fence = self._fences.pop(handler_id, None)
            self._staged_acks.pop(handler_id, None)
            if handler_id in self._finished:
                self._finished.discard(handler_id)
                return  # its end released the row already
            if fence is None:
                return
            with self._tx() as db:  # one round trip: the note is sent on the database's own condition
                db.execute(
                    "WITH released AS (UPDATE handlers h SET owner = NULL, lease_until = NULL "
                    "WHERE handler_id = %s AND fence = %s RETURNING h.handler_id, h.status) "
                    # Something arrived for it meanwhile: another replica may take it now.
                    "SELECT pg_notify(%s, %s) FROM released r WHERE r.status = 'running' "
                    "AND EXISTS (SELECT 1 FROM inbox i WHERE i.handler_id = r.handler_id)",
                    (handler_id, fence, CHANNEL, f"queue:{handler_id}"),
                )

    def held(self) -> dict[str, int]:
        # No lock: the event loop calls this, and the lock is held by the store's thread for
        # whole round trips. Copying a dict is one step under the GIL.
        return dict(self._fences)

    # ------------------------------------------------------------------ inbox
    def post(self, handler_id: str, *, kind: Literal["event", "cancel"], event: str | None = None,
             step: str | None = None) -> int:
        with self._tx() as db:
            found = db.execute(
                "INSERT INTO inbox (handler_id, kind, event, step, at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (handler_id, kind, event, step, now_iso()),
            ).fetchone()
            assert found is not None
            self._notify(db, "inbox", handler_id)
        return int(found[0])

    def inbox(self, handler_id: str) -> list[InboxItem]:
        rows = self._read(
            "SELECT id, handler_id, kind, event, step, at FROM inbox WHERE handler_id = %s ORDER BY id", (handler_id,)
        )
        return [InboxItem(id=i, handler_id=h, kind=k, event=e, step=s, at=at) for i, h, k, e, s, at in rows]

    def ack_with_next_append(self, handler_id: str, item_ids: Sequence[int]) -> None:
        with self._lock:
            self._staged_acks.setdefault(handler_id, []).extend(item_ids)

    def ack(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        with self._tx() as db:
            handlers = db.execute(
                "DELETE FROM inbox WHERE id = ANY(%s) RETURNING handler_id", (list(item_ids),)
            ).fetchall()
            for (handler_id,) in set(handlers):
                self._notify(db, "inbox", handler_id)

    def pending(self, item_id: int) -> bool:
        return bool(self._read("SELECT 1 FROM inbox WHERE id = %s", (item_id,)))

    # ------------------------------------------------------------------ the replicas' view
    def queue_depth(self) -> int:
        rows = self._read(
            "SELECT count(*) FROM handlers h WHERE h.status = 'running' AND h.owner IS NULL AND "
            "(h.waiting_since IS NULL OR EXISTS (SELECT 1 FROM inbox i WHERE i.handler_id = h.handler_id))"
        )
        return int(rows[0][0])

    def owners(self) -> dict[str, int]:
        rows = self._read(
            "SELECT owner, count(*) FROM handlers WHERE owner IS NOT NULL AND lease_until > now() GROUP BY owner"
        )
        return {owner: int(count) for owner, count in rows}

    def listen(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        stop = threading.Event()
        ready = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as db:
                        db.execute(f"LISTEN {CHANNEL}")
                        ready.set()
                        # After a reconnect, whatever was announced meanwhile is re-read by the listener.
                        callback("reconnect", "")
                        while not stop.is_set():
                            for note in db.notifies(timeout=0.5):
                                kind, _, handler_id = note.payload.partition(":")
                                callback(kind, handler_id)
                except Exception as exc:  # the database went away: try again shortly
                    if not stop.is_set():
                        logger.warning("LISTEN connection to %s failed (%s); reconnecting", self.url, exc)
                        stop.wait(0.5)

        thread = threading.Thread(target=loop, name="workflows-server-listen", daemon=True)
        thread.start()
        ready.wait(10)

        def close() -> None:
            stop.set()
            thread.join(5)

        return close

    # ------------------------------------------------------------------ lifetime
    def probe(self) -> None:
        with self._tx() as db:  # reconnects if the connection was lost
            found = db.execute("SHOW transaction_read_only").fetchone()
            if found is not None and found[0] == "on":
                raise StoreError(f"the PostgreSQL store {self.url} is read-only (a standby, or default_transaction_read_only)")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            for reader in self._reader_connections:
                reader.close()
            self._reader_connections.clear()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, owner={self.owner!r})"


__all__ = ["CHANNEL", "MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "default_owner", "migrate"]
