"""The SQLite store on a real file: WAL, atomic records, and in-place upgrades of older files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workflows_server.store import HandlerRow, HandlerUpdate, NewStreamEvent, SqliteStore, StoreError, open_store
from workflows_server.store.sqlite import SCHEMA_VERSION


def test_a_new_file_is_in_wal_mode_at_the_current_schema(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/sub/runs.db")
    assert isinstance(store, SqliteStore)
    db = sqlite3.connect(tmp_path / "sub" / "runs.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_records_events_and_row_changes_are_written_together(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    store.create_handler(HandlerRow(handler_id="h", workflow_name="w", run_id="r"), {"state": {}})
    seq = store.append("h", 0, {"kind": "RunIdle"}, event=NewStreamEvent(envelope={"type": "E"}, internal=True))
    store.append("h", 0, {"kind": "RunConcluded"}, event=NewStreamEvent(envelope={"type": "StopEvent"}, terminal=True),
                 update=HandlerUpdate(status="completed", result={"type": "StopEvent"}))
    store.close()
    again = SqliteStore(tmp_path / "runs.db")
    assert seq == 0 and [e.sequence for e in again.stream("h")] == [0, 1]
    assert again.stream("h", after=0)[0].terminal
    assert [e.record["kind"] for e in again.journal("h")] == ["RunIdle", "RunConcluded"]
    row = again.get_handler("h")
    assert row is not None and row.status == "completed" and row.result == {"type": "StopEvent"}


# The schema of version 1, written out here as that version created it.
_VERSION_1 = [
    "CREATE TABLE handlers (handler_id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL, run_id TEXT NOT NULL, "
    "status TEXT NOT NULL, error TEXT, result TEXT, started_at TEXT NOT NULL, updated_at TEXT, completed_at TEXT, "
    "start_event TEXT, carrier TEXT NOT NULL DEFAULT '{}', epoch INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE snapshots (handler_id TEXT NOT NULL, epoch INTEGER NOT NULL, at TEXT NOT NULL, payload TEXT NOT NULL, "
    "PRIMARY KEY (handler_id, epoch))",
    "CREATE TABLE journal (position INTEGER PRIMARY KEY AUTOINCREMENT, handler_id TEXT NOT NULL, epoch INTEGER NOT NULL, "
    "at TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX journal_by_handler ON journal (handler_id, epoch, position)",
    "CREATE TABLE stream (handler_id TEXT NOT NULL, sequence INTEGER NOT NULL, at TEXT NOT NULL, envelope TEXT NOT NULL, "
    "internal INTEGER NOT NULL DEFAULT 0, terminal INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (handler_id, sequence))",
]


def test_an_older_file_is_upgraded_in_place_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in _VERSION_1:
        db.execute(statement)
    db.execute(
        "INSERT INTO handlers VALUES ('old', 'w', 'r1', 'completed', NULL, '{\"type\": \"StopEvent\"}', "
        "'2025-01-01T00:00:00+00:00', NULL, '2025-01-01T00:00:01+00:00', NULL, '{}', 0)"
    )
    db.execute("INSERT INTO journal (handler_id, epoch, at, record) VALUES ('old', 0, 'then', '{\"kind\": \"RunIdle\"}')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert store.migrated_from == 1
    row = store.get_handler("old")
    assert row is not None and row.status == "completed" and row.continued == 0 and row.waiting_since is None
    assert [e.record for e in store.journal("old")] == [{"kind": "RunIdle"}]
    store.set_waiting("old", True)
    assert store.get_handler("old").waiting_since is not None  # type: ignore[union-attr]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_file_from_a_newer_version_and_unknown_urls_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this server"):
        SqliteStore(path)
    with pytest.raises(StoreError, match="sqlite://"):
        open_store("mongodb://localhost/runs")
    with pytest.raises(StoreError, match="no path"):
        open_store("sqlite://runs.db")


def test_finished_runs_are_purged_after_the_retention_period(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    store = SqliteStore(tmp_path / "runs.db")
    now = datetime.now(timezone.utc)
    for handler_id, ended in (("old", now - timedelta(days=40)), ("new", now)):
        store.create_handler(HandlerRow(handler_id=handler_id, workflow_name="w", run_id="r"), {"state": {}})
        store.append(handler_id, 0, {"kind": "RunConcluded"}, event=NewStreamEvent(envelope={"type": "StopEvent"}),
                     update=HandlerUpdate(status="completed", completed_at=ended.isoformat()))
    store.create_handler(HandlerRow(handler_id="running", workflow_name="w", run_id="r"), {"state": {}})
    assert store.purge_finished((now - timedelta(days=30)).isoformat()) == 1
    assert store.get_handler("old") is None and store.journal("old") == [] and store.stream("old") == []
    assert store.snapshots("old") == []
    assert store.get_handler("new") is not None and store.get_handler("running") is not None


def test_the_wal_is_checkpointed_beside_the_writes_and_stays_small(tmp_path: Path) -> None:
    # No commit checkpoints (that would make it wait for the copy and the sync): the
    # store's checkpointer thread does, every few dozen commits, so the WAL does not grow.
    store = SqliteStore(tmp_path / "runs.db")
    store.create_handler(HandlerRow(handler_id="h", workflow_name="w", run_id="r"), {"state": {}})
    record = {"kind": "StepStarted", "padding": "x" * 2000}
    for _ in range(1000):
        store.append("h", 0, record, event=NewStreamEvent(envelope={"type": "E", "padding": "y" * 2000}))
    with sqlite3.connect(tmp_path / "runs.db") as db:
        assert db.execute("SELECT count(*) FROM journal").fetchone() == (1000,)
    # Unchecked, these 1000 commits (of two 2 KB rows and their pages) make a WAL of 33 MB.
    assert (tmp_path / "runs.db-wal").stat().st_size < 8 * 1024 * 1024
    store.close()
