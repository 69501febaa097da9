"""The SQLite run store: one file, WAL mode, schema migrations that upgrade an older file in place.

Durability: every write is its own transaction, committed before the call returns.
In WAL mode with ``synchronous=NORMAL`` a commit is in the operating system's hands
once it returns, so it survives the process being killed (``kill -9``) at any moment;
``durable_fsync=True`` (``synchronous=FULL``) also survives a power cut, at the
price of an fsync per record.

The file's schema version is SQLite's ``user_version``; ``MIGRATIONS`` lists the
statements that take a file from each version to the next, and opening a file runs
the missing ones in one transaction. A file written by a newer version is refused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from workflows_server.store.base import NewRun, RunStore
from workflows_server.store.checkpointer import Checkpointer
from workflows_server.store.owner import FileOwner
from workflows_server.store.records import (
    Append,
    HandlerExists,
    HandlerRow,
    HandlerUpdate,
    JournalEntry,
    NewStreamEvent,
    Snapshot,
    StoreError,
    StreamEvent,
    now_iso,
)
from workflows_server.store.queries import IndexEntry, LlmCall, RunIndexUpdate, RunPage, RunQuery
from workflows_server.store.sql import (
    WORKFLOW_NAMES,
    Execute,
    Statement,
    TextIndex,
    handler_update,
    insert_llm_call_sql,
    list_handlers,
    llm_call_of,
    llm_call_values,
    search_runs,
    select_llm_calls_sql,
)

def _refresh_text(handler_id: str) -> str:
    """Trigger statements that write the run's row of ``search_text`` again from its handler and index rows."""
    return (
        # Not INSERT OR IGNORE: a trigger's conflict clause gives way to its outer statement's (an upsert).
        f"INSERT INTO search_keys (handler_id) SELECT {handler_id} "
        f"WHERE NOT EXISTS (SELECT 1 FROM search_keys WHERE handler_id = {handler_id}); "
        f"DELETE FROM search_text WHERE rowid = (SELECT id FROM search_keys WHERE handler_id = {handler_id}); "
        "INSERT INTO search_text (rowid, handler_id, input_text, result, error) "
        "SELECT k.id, h.handler_id, i.input_text, h.result, h.error FROM search_keys k "
        "JOIN handlers h ON h.handler_id = k.handler_id LEFT JOIN run_index i ON i.handler_id = k.handler_id "
        f"WHERE k.handler_id = {handler_id};"
    )


def _search_triggers() -> tuple[str, ...]:
    """The triggers that keep ``search_text`` (what text search looks in) equal to the runs' id,
    input, result and error, whichever statement changes them; a new run's row is written by
    ``create_handlers`` itself, many in one statement (a trigger's insert into an FTS5 table
    flushes the index at every row, which made filling a store seven times slower)."""
    has_handler = "EXISTS (SELECT 1 FROM handlers WHERE handler_id = new.handler_id)"
    return (
        "CREATE TRIGGER search_on_update AFTER UPDATE OF result, error ON handlers "
        "WHEN old.result IS NOT new.result OR old.error IS NOT new.error "
        f"BEGIN {_refresh_text('new.handler_id')} END",
        "CREATE TRIGGER search_on_delete AFTER DELETE ON handlers BEGIN "
        "DELETE FROM search_text WHERE rowid = (SELECT id FROM search_keys WHERE handler_id = old.handler_id); "
        "DELETE FROM search_keys WHERE handler_id = old.handler_id; END",
        f"CREATE TRIGGER search_on_index AFTER INSERT ON run_index WHEN new.input_text IS NOT NULL AND {has_handler} "
        f"BEGIN {_refresh_text('new.handler_id')} END",
        "CREATE TRIGGER search_on_reindex AFTER UPDATE OF input_text ON run_index "
        f"WHEN old.input_text IS NOT new.input_text AND {has_handler} BEGIN {_refresh_text('new.handler_id')} END",
    )


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # version 1: runs, their snapshots, journal and stream
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
            epoch INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE snapshots (
            handler_id TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            at TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (handler_id, epoch)
        )""",
        """CREATE TABLE journal (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
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
            internal INTEGER NOT NULL DEFAULT 0,
            terminal INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (handler_id, sequence)
        )""",
    ),
    # version 2: runs that wait outside memory, continuation counts, listing by status
    (
        "ALTER TABLE handlers ADD COLUMN waiting_since TEXT",
        "ALTER TABLE handlers ADD COLUMN continued INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX handlers_by_status ON handlers (status, workflow_name)",
    ),
    # version 3: the debugger's run index (session, searchable input, step count, lineage) and LLM calls
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
            id INTEGER PRIMARY KEY AUTOINCREMENT,
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
            cost REAL,
            input_text TEXT,
            output_text TEXT,
            error TEXT,
            extra TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX llm_calls_by_handler ON llm_calls (handler_id, started_at)",
    ),
    # version 4: saved contexts already resumed (a second resume is refused)
    (
        """CREATE TABLE resumed_contexts (
            resume_id TEXT PRIMARY KEY,
            handler_id TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
    ),
    # version 5: a million runs: the list read newest first under each filter, and full-text search
    (
        # waiting_since last: "running, waiting or not" is counted from the index alone.
        "CREATE INDEX handlers_by_status_start ON handlers (status, started_at, handler_id, waiting_since)",
        "CREATE INDEX handlers_by_workflow_start ON handlers (workflow_name, started_at, handler_id)",
        "CREATE INDEX handlers_waiting ON handlers (started_at, handler_id) WHERE waiting_since IS NOT NULL",
        "CREATE INDEX run_index_by_parent ON run_index (parent_id)",
        # The FTS table's rowid is search_keys.id: a handler's own rowid may change on VACUUM.
        "CREATE TABLE search_keys (id INTEGER PRIMARY KEY, handler_id TEXT NOT NULL UNIQUE)",
        "CREATE VIRTUAL TABLE search_text USING fts5("
        "handler_id, input_text, result, error, tokenize = 'trigram case_sensitive 0')",
        "INSERT INTO search_keys (handler_id) SELECT handler_id FROM handlers ORDER BY started_at",
        "INSERT INTO search_text (rowid, handler_id, input_text, result, error) "
        "SELECT k.id, h.handler_id, i.input_text, h.result, h.error FROM search_keys k "
        "JOIN handlers h ON h.handler_id = k.handler_id LEFT JOIN run_index i ON i.handler_id = k.handler_id",
        *_search_triggers(),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "handler_id, workflow_name, run_id, status, error, result, started_at, updated_at, completed_at, "
    "start_event, carrier, epoch, waiting_since, continued"
)
_RUN_TABLES = ("handlers", "snapshots", "journal", "stream", "run_index", "llm_calls", "resumed_contexts")
"""Every table with rows of a run (by ``handler_id``): deleting or purging a run empties each."""
_COLUMN_NAMES = tuple(column.strip() for column in _COLUMNS.split(","))
_MARK = "?"  # sqlite3's parameter mark
_INSERT_LLM_CALL = insert_llm_call_sql(_MARK)
_SELECT_LLM_CALLS = select_llm_calls_sql(_MARK)
_INSERT_HANDLER = f"INSERT INTO handlers ({_COLUMNS}) VALUES ({', '.join('?' for _ in _COLUMN_NAMES)})"
_INDEX_RUN = (
    "INSERT INTO run_index (handler_id, session_id, input_text, steps, parent_id, relation, fork_seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (handler_id) DO UPDATE SET "
    "session_id = COALESCE(excluded.session_id, run_index.session_id), "
    "input_text = COALESCE(excluded.input_text, run_index.input_text), "
    "steps = CASE WHEN ? THEN excluded.steps ELSE run_index.steps + excluded.steps END, "
    "parent_id = COALESCE(excluded.parent_id, run_index.parent_id), "
    "relation = COALESCE(excluded.relation, run_index.relation), "
    "fork_seq = COALESCE(excluded.fork_seq, run_index.fork_seq)"
)
_INDEX_NEW_TEXT = (
    "INSERT INTO search_text (rowid, handler_id, input_text, result, error) "
    "SELECT k.id, h.handler_id, i.input_text, h.result, h.error FROM search_keys k "
    "JOIN handlers h ON h.handler_id = k.handler_id LEFT JOIN run_index i ON i.handler_id = k.handler_id WHERE k.id > ?"
)
# FTS5 with the trigram tokenizer: a quoted phrase of 3 characters or more matches where
# it is a substring, case-insensitively (what LIKE '%text%' matched).
_MATCHING = "SELECT rowid FROM search_text WHERE search_text MATCH ? LIMIT ?"
_RECENT = "SELECT COUNT(*) FROM search_text WHERE search_text MATCH ? AND rowid > ?"
_HOLDING = (
    "SELECT k.id FROM json_each(?) j CROSS JOIN search_keys k ON k.id = j.value "
    "CROSS JOIN handlers h ON h.handler_id = k.handler_id LEFT JOIN run_index i ON i.handler_id = k.handler_id "
    "WHERE holds_text(?, h.handler_id, i.input_text, h.result, h.error)"
)
SAMPLE_ROWS = 1000
"""How many of the newest rows of the index tell how common a trigram is (``_rarer_part``)."""
COMMON_TRIGRAM = 0.2
"""A trigram in this share of the sample or more is cut off the ends of a text looked up."""
TESTED_AT_MOST = 2000
"""The most runs holding the rarer part of a text that are read to test the whole text."""


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _rarer_part(text: str, execute: Execute) -> str:
    """``text`` without the trigrams at either end found in ``COMMON_TRIGRAM`` of the newest
    ``SAMPLE_ROWS`` runs (3 characters at least); ``text`` itself when none is.

    FTS5 checks a phrase's positions in every run holding its rarest trigram, in the list of
    each of its trigrams: a phrase made of trigrams that JSON keys put in every run
    (``"user": "user-00123``) costs tens of milliseconds however rare it is.
    """
    lowered = text.lower()
    if len(lowered) != len(text):
        return text  # (a letter whose lower case is longer: the positions would not match)
    [(newest,)] = execute(Statement(sql="SELECT COALESCE(MAX(id), 0) FROM search_keys", params=[]))
    sample = min(int(newest), SAMPLE_ROWS)
    if sample == 0:
        return text

    def common(trigram: str) -> bool:
        [(held,)] = execute(Statement(sql=_RECENT, params=[_phrase(trigram), int(newest) - sample]))
        return int(held) >= COMMON_TRIGRAM * sample

    start, end = 0, len(lowered)
    while end - start > 3 and common(lowered[start:start + 3]):
        start += 1
    while end - start > 3 and common(lowered[end - 3:end]):
        end -= 1
    return lowered[start:end]


def _find_text(text: str, most: int, execute: Execute) -> list[str] | None:
    """``TextIndex.find``: the runs whose text holds ``text``; ``None`` when more than ``most`` do.

    The runs are named by their key in the index (``search_keys.id``, the FTS5 rowid), which
    the list's statements join to the runs themselves (``_TEXT_INDEX``). When the text has
    a rarer part (``_rarer_part``) held by at most ``TESTED_AT_MOST`` runs, those runs are
    read and tested against the whole text. Else the whole phrase's rows are read (FTS5
    stops at ``most + 1``; keys only, no join: a common text costs a few milliseconds).
    """
    part = _rarer_part(text, execute)
    if part != text.lower():
        rows = execute(Statement(sql=_MATCHING, params=[_phrase(part), TESTED_AT_MOST + 1]))
        if len(rows) <= TESTED_AT_MOST:
            keys = json.dumps([r[0] for r in rows])
            found = [str(r[0]) for r in execute(Statement(sql=_HOLDING, params=[keys, text.lower()]))]
            return found if len(found) <= most else None
    rows = execute(Statement(sql=_MATCHING, params=[_phrase(text), most + 1]))
    return None if len(rows) > most else [str(r[0]) for r in rows]


_TEXT_INDEX = TextIndex(
    find=_find_text,
    # Per run, a function of this connection (an FTS5 query per run would read the whole
    # index each time); it folds case as the trigram tokenizer does, non-ASCII letters too.
    row="holds_text(?, h.handler_id, i.input_text, h.result, h.error)",
    row_params=lambda text: [text.lower()],
    # The list's index is walked newest first, each entry's key tested against the keys
    # found (a test on an expression: the planner cannot turn it into lookups by id).
    among="(SELECT k.id FROM search_keys k WHERE k.handler_id = h.handler_id) IN (SELECT value FROM json_each(?))",
    # CROSS JOIN: SQLite keeps this join order, from the keys to their runs.
    drive="json_each(?) f CROSS JOIN search_keys k ON k.id = f.value CROSS JOIN handlers h ON h.handler_id = k.handler_id",
    found=lambda keys: json.dumps([int(key) for key in keys]),
)


def _holds_text(needle: str, *fields: str | None) -> bool:
    """SQL ``holds_text(needle, field, ...)``: is ``needle`` (lowered) in a field, case-insensitively."""
    return any(field is not None and needle in field.lower() for field in fields)


def path_from_url(url: str) -> str:
    """The file of a ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` URL (``sqlite://``: in memory)."""
    if not url.startswith("sqlite://"):
        raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/runs.db)")
    rest = url[len("sqlite://"):]
    if rest in ("", "/", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise StoreError(f"SQLite URL {url!r} has no path: write sqlite:///relative/runs.db or sqlite:////abs/runs.db")
    return rest[1:]


def migrate(connection: sqlite3.Connection, path: str) -> int:
    """Bring the file's schema to ``SCHEMA_VERSION`` in one transaction; return the version it had."""
    found = connection.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {found}, newer than this server's {SCHEMA_VERSION}: "
            "upgrade otel-workflows-server to open it"
        )
    if found == SCHEMA_VERSION:
        return found
    if sqlite3.sqlite_version_info < (3, 34):
        raise StoreError(
            f"{path} needs SQLite 3.34 or newer for the run search (the FTS5 trigram tokenizer); this Python "
            f"has SQLite {sqlite3.sqlite_version}: use a Python built with a newer SQLite"
        )
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return found


class SqliteStore(RunStore):
    """A ``RunStore`` in one SQLite file (created, with its folder, if missing).

    ``path`` is a file path or a ``sqlite:///`` URL. The store is owned by one server
    process at a time (``own()``: an OS lock, see ``store.owner``); a write that fails
    (disk full, file read-only) reopens the file at the next write, so the store
    recovers by itself once the cause is gone.
    """

    read_threads = 1

    def __init__(self, path: str | Path, *, durable_fsync: bool = False) -> None:
        text = str(path)
        file = path_from_url(text) if text.startswith("sqlite:") else text
        self.path = file
        self.url = text if text.startswith("sqlite:") else f"sqlite:///{file}"
        self._durable_fsync = durable_fsync
        if file != ":memory:":
            Path(file).parent.mkdir(parents=True, exist_ok=True)
        self._db, self.migrated_from = self._open()
        self._checkpointer = Checkpointer(file) if file != ":memory:" else None
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._failed = False
        """A write failed: the next write reopens the file first (it may have been opened read-only)."""
        self._owner = FileOwner(file) if file != ":memory:" else None

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: the store is opened on one thread and used on the
        # worker's (tests also hand a store from one thread to a server on another).
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=10000")
        # 64 MiB of pages (SQLite's default is 2 MiB): the indexes of a million runs stay in memory.
        db.execute("PRAGMA cache_size=-65536")
        db.create_function("holds_text", -1, _holds_text, deterministic=True)
        return db

    def _open(self) -> tuple[sqlite3.Connection, int]:
        try:
            db = self._connect()
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self._durable_fsync else 'NORMAL'}")
            # Checkpoints run on the store's checkpointer thread, not inside a commit (store.checkpointer).
            if self.path != ":memory:":
                db.execute("PRAGMA wal_autocheckpoint=0")
            return db, migrate(db, self.path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        # Reads have a connection of their own (WAL lets it read while a write is under
        # way): they run on the worker's reading thread, beside the writes.
        if self.path == ":memory:":  # another connection would be another database
            with self._lock:
                yield self._db
            return
        with self._read_lock:
            if self._reader is None:
                self._reader = self._connect()
            try:
                yield self._reader
            except sqlite3.DatabaseError:
                self._reader.close()
                self._reader = None
                raise

    def _reopen(self) -> None:
        # After a failed write (disk full, file read-only, I/O error): a fresh connection
        # sees the file as it is now (writable again, space freed).
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        # The reader too: SQLite shares a file's WAL index among a process's connections,
        # and one opened while the file was read-only would keep it read-only for all.
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self._db, _ = self._open()
        self._failed = False

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                if self._failed:
                    self._reopen()
                db = self._db
                db.execute("BEGIN")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:  # SQLite may have rolled back by itself (disk full)
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                if self._checkpointer is not None and self._checkpointer.committed():
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                self._failed = True
                raise StoreError(f"the SQLite store {self.path} cannot write: {exc}") from exc

    # ------------------------------------------------------------------ ownership and health
    def own(self) -> None:
        if self._owner is not None:
            self._owner.take()

    def probe(self) -> None:
        with self._tx() as db:
            # A real commit (page 1 rewritten) that changes nothing.
            (version,) = db.execute("PRAGMA user_version").fetchone()
            db.execute(f"PRAGMA user_version = {int(version)}")

    # ------------------------------------------------------------------ handlers
    @staticmethod
    def _row(values: Sequence[Any]) -> HandlerRow:
        (handler_id, workflow_name, run_id, status, error, result, started_at, updated_at, completed_at,
         start_event, carrier, epoch, waiting_since, continued) = values
        return HandlerRow(
            handler_id=handler_id, workflow_name=workflow_name, run_id=run_id, status=status, error=error,
            result=json.loads(result) if result else None, started_at=started_at, updated_at=updated_at,
            completed_at=completed_at, start_event=start_event, carrier=json.loads(carrier or "{}"), epoch=epoch,
            waiting_since=waiting_since, continued=continued,
        )

    @staticmethod
    def _values(row: HandlerRow) -> tuple[Any, ...]:
        return (
            row.handler_id, row.workflow_name, row.run_id, row.status, row.error,
            json.dumps(row.result) if row.result is not None else None, row.started_at,
            row.updated_at or row.started_at, row.completed_at, row.start_event, json.dumps(row.carrier),
            0, row.waiting_since, row.continued,
        )

    def create_handler(self, row: HandlerRow, base: dict[str, Any]) -> None:
        self.create_handlers([NewRun(row=row, base=base)])

    def create_handlers(self, runs: Sequence[NewRun]) -> None:
        now = now_iso()
        try:
            with self._tx() as db:
                # Index entries first: the run's text is then indexed once, with its input.
                db.executemany(
                    _INDEX_RUN, [self._index_values(run.row.handler_id, run.index) for run in runs if run.index]
                )
                db.executemany(_INSERT_HANDLER, [self._values(run.row) for run in runs])
                db.executemany(
                    "INSERT INTO snapshots (handler_id, epoch, at, payload) VALUES (?, 0, ?, ?)",
                    [(run.row.handler_id, now, json.dumps(run.base)) for run in runs],
                )
                (before,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM search_keys").fetchone()
                db.executemany("INSERT INTO search_keys (handler_id) VALUES (?)", [(run.row.handler_id,) for run in runs])
                db.execute(_INDEX_NEW_TEXT, (before,))
        except sqlite3.IntegrityError as exc:
            if len(runs) == 1:
                raise HandlerExists(f"a handler with id {runs[0].row.handler_id!r} already exists") from None
            raise HandlerExists(f"one of the {len(runs)} handlers' ids is taken ({exc}); none was written") from None

    def restart_handler(self, row: HandlerRow, base: dict[str, Any]) -> None:
        with self._tx() as db:
            (epoch,) = db.execute("SELECT epoch FROM handlers WHERE handler_id = ?", (row.handler_id,)).fetchone()
            epoch += 1
            now = now_iso()
            db.execute(
                "UPDATE handlers SET run_id = ?, status = 'running', error = NULL, result = NULL, started_at = ?, "
                "updated_at = ?, completed_at = NULL, start_event = ?, carrier = '{}', epoch = ?, waiting_since = NULL "
                "WHERE handler_id = ?",
                (row.run_id, now, now, row.start_event, epoch, row.handler_id),
            )
            db.execute(
                "INSERT INTO snapshots (handler_id, epoch, at, payload) VALUES (?, ?, ?, ?)",
                (row.handler_id, epoch, now, json.dumps(base)),
            )

    def get_handler(self, handler_id: str) -> HandlerRow | None:
        with self._reading() as db:
            found = db.execute(f"SELECT {_COLUMNS} FROM handlers WHERE handler_id = ?", (handler_id,)).fetchone()
        return None if found is None else self._row(found)

    def list_handlers(
        self, *, status: Sequence[str] | None = None, workflow_name: Sequence[str] | None = None
    ) -> list[HandlerRow]:
        query = list_handlers(columns=_COLUMN_NAMES, mark=_MARK, status=status, workflow_name=workflow_name)
        with self._reading() as db:
            rows = db.execute(query.sql, query.params).fetchall()
        return [self._row(r) for r in rows]

    @staticmethod
    def _apply(db: sqlite3.Connection, handler_id: str, update: HandlerUpdate) -> None:
        statement = handler_update(handler_id, update, mark=_MARK)
        db.execute(statement.sql, statement.params)

    def update_handler(self, handler_id: str, update: HandlerUpdate) -> None:
        with self._tx() as db:
            self._apply(db, handler_id, update)

    def delete_handler(self, handler_id: str) -> bool:
        with self._tx() as db:
            gone = db.execute("DELETE FROM handlers WHERE handler_id = ?", (handler_id,)).rowcount
            for table in _RUN_TABLES[1:]:
                db.execute(f"DELETE FROM {table} WHERE handler_id = ?", (handler_id,))
        return bool(gone)

    def purge_finished(self, before: str, *, limit: int = 500) -> int:
        with self._tx() as db:
            ids = [
                r[0] for r in db.execute(
                    "SELECT handler_id FROM handlers WHERE status IN ('completed', 'failed', 'cancelled') "
                    "AND completed_at IS NOT NULL AND completed_at < ? ORDER BY completed_at LIMIT ?",
                    (before, limit),
                ).fetchall()
            ]
            for table in _RUN_TABLES:
                db.executemany(f"DELETE FROM {table} WHERE handler_id = ?", [(i,) for i in ids])
        return len(ids)

    def claim_resume(self, resume_id: str, handler_id: str) -> str | None:
        with self._tx() as db:
            found = db.execute("SELECT handler_id FROM resumed_contexts WHERE resume_id = ?", (resume_id,)).fetchone()
            if found is not None:
                return str(found[0])
            db.execute(
                "INSERT INTO resumed_contexts (resume_id, handler_id, at) VALUES (?, ?, ?)", (resume_id, handler_id, now_iso())
            )
        return None

    # ------------------------------------------------------------------ journal and snapshots
    @staticmethod
    def _insert_event(db: sqlite3.Connection, handler_id: str, event: NewStreamEvent, at: str) -> int:
        (sequence,) = db.execute(
            "INSERT INTO stream (handler_id, sequence, at, envelope, internal, terminal) "
            "SELECT ?, COALESCE(MAX(sequence), -1) + 1, ?, ?, ?, ? FROM stream WHERE handler_id = ? RETURNING sequence",
            (handler_id, at, json.dumps(event.envelope), int(event.internal), int(event.terminal), handler_id),
        ).fetchone()
        return int(sequence)

    def append_many(self, entries: Sequence[Append], index: Sequence[IndexEntry] = ()) -> list[int | None | StoreError]:
        at = now_iso()
        outcomes: list[int | None | StoreError] = []
        try:
            with self._tx() as db:
                db.executemany(
                    "INSERT INTO journal (handler_id, epoch, at, record) VALUES (?, ?, ?, ?)",
                    [(e.handler_id, e.epoch, at, json.dumps(e.record)) for e in entries],
                )
                for entry in entries:
                    sequence = None if entry.event is None else self._insert_event(db, entry.handler_id, entry.event, at)
                    if entry.update is not None:
                        self._apply(db, entry.handler_id, entry.update)
                    outcomes.append(sequence)
                for item in index:
                    db.execute(_INDEX_RUN, self._index_values(item.handler_id, item.update))
        except sqlite3.Error as exc:
            raise StoreError(f"the SQLite store {self.path} cannot write: {exc}") from exc
        return outcomes

    def begin_epoch(self, handler_id: str, payload: dict[str, Any], *, waiting: bool, continued: bool = False) -> int:
        now = now_iso()
        with self._tx() as db:
            (epoch,) = db.execute("SELECT epoch FROM handlers WHERE handler_id = ?", (handler_id,)).fetchone()
            epoch += 1
            db.execute(
                "INSERT INTO snapshots (handler_id, epoch, at, payload) VALUES (?, ?, ?, ?)",
                (handler_id, epoch, now, json.dumps(payload)),
            )
            db.execute(
                "UPDATE handlers SET epoch = ?, waiting_since = ?, updated_at = ?, continued = continued + ?, "
                "start_event = NULL WHERE handler_id = ?",
                (epoch, now if waiting else None, now, int(continued), handler_id),
            )
        return int(epoch)

    def set_waiting(self, handler_id: str, waiting: bool) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE handlers SET waiting_since = ?, continued = continued + ? WHERE handler_id = ?",
                (now_iso() if waiting else None, 0 if waiting else 1, handler_id),
            )

    def latest_snapshot(self, handler_id: str) -> Snapshot | None:
        with self._reading() as db:
            found = db.execute(
                "SELECT epoch, at, payload FROM snapshots WHERE handler_id = ? ORDER BY epoch DESC LIMIT 1",
                (handler_id,),
            ).fetchone()
        return None if found is None else Snapshot(epoch=found[0], at=found[1], payload=json.loads(found[2]))

    def snapshots(self, handler_id: str) -> list[Snapshot]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT epoch, at, payload FROM snapshots WHERE handler_id = ? ORDER BY epoch", (handler_id,)
            ).fetchall()
        return [Snapshot(epoch=e, at=at, payload=json.loads(p)) for e, at, p in rows]

    def journal(self, handler_id: str, *, epoch: int | None = None) -> list[JournalEntry]:
        sql = "SELECT position, epoch, at, record FROM journal WHERE handler_id = ?"
        params: list[Any] = [handler_id]
        if epoch is not None:
            sql += " AND epoch = ?"
            params.append(epoch)
        with self._reading() as db:
            rows = db.execute(sql + " ORDER BY position", params).fetchall()
        return [JournalEntry(position=p, epoch=e, at=at, record=json.loads(r)) for p, e, at, r in rows]

    # ------------------------------------------------------------------ stream
    def add_stream_event(self, handler_id: str, event: NewStreamEvent, update: HandlerUpdate | None = None) -> int:
        with self._tx() as db:
            sequence = self._insert_event(db, handler_id, event, now_iso())
            if update is not None:
                self._apply(db, handler_id, update)
        return sequence

    def stream(self, handler_id: str, *, after: int = -1, limit: int = 1000) -> list[StreamEvent]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT sequence, at, envelope, internal, terminal FROM stream "
                "WHERE handler_id = ? AND sequence > ? ORDER BY sequence LIMIT ?",
                (handler_id, after, limit),
            ).fetchall()
        return [
            StreamEvent(sequence=s, at=at, envelope=json.loads(env), internal=bool(i), terminal=bool(t))
            for s, at, env, i, t in rows
        ]

    def last_sequence(self, handler_id: str) -> int:
        with self._reading() as db:
            (found,) = db.execute(
                "SELECT COALESCE(MAX(sequence), -1) FROM stream WHERE handler_id = ?", (handler_id,)
            ).fetchone()
        return int(found)

    # ------------------------------------------------------------------ debugger queries
    @staticmethod
    def _index_values(handler_id: str, update: RunIndexUpdate) -> tuple[Any, ...]:
        return (
            handler_id, update.session_id, update.input_text, update.add_steps, update.parent_id,
            update.relation, update.fork_seq, int(update.reset_steps),
        )

    def index_run(self, handler_id: str, update: RunIndexUpdate) -> None:
        with self._tx() as db:
            db.execute(_INDEX_RUN, self._index_values(handler_id, update))

    def search_runs(self, query: RunQuery) -> RunPage:
        with self._reading() as db:
            return search_runs(
                query, columns=_COLUMN_NAMES, mark=_MARK, text_index=_TEXT_INDEX, handler_row=self._row,
                execute=lambda statement: db.execute(statement.sql, statement.params).fetchall(),
            )

    def workflow_names(self) -> list[str]:
        with self._reading() as db:
            rows = db.execute(WORKFLOW_NAMES).fetchall()
        return [r[0] for r in rows]

    def add_llm_call(self, call: LlmCall) -> None:
        with self._tx() as db:
            db.execute(_INSERT_LLM_CALL, llm_call_values(call))

    def llm_calls(self, handler_id: str) -> list[LlmCall]:
        with self._reading() as db:
            rows = db.execute(_SELECT_LLM_CALLS, (handler_id,)).fetchall()
        return [llm_call_of(r) for r in rows]

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
        with self._lock:
            self._db.close()
            if self._owner is not None:
                self._owner.release()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore", "migrate", "path_from_url"]
