"""The PostgreSQL store on a real throwaway cluster: schema upgrades, claims, fencing, the inbox, retention."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import psycopg
import pytest
from server_helpers import wait_for

from workflows_server.store import (
    Append,
    FencedOut,
    HandlerExists,
    HandlerRow,
    HandlerUpdate,
    NewStreamEvent,
    StoreError,
    open_store,
)
from workflows_server.store.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore
from workflows_server.store.pg_text import COLUMNS, TEXT_STATISTICS, TextStatistics
from workflows_server.store.queries import RunQuery
from search_checks import check_search_at_small_scale


def _run(store: PostgresStore, handler_id: str = "h", workflow: str = "w") -> None:
    store.create_handler(HandlerRow(handler_id=handler_id, workflow_name=workflow, run_id="r"), {"state": {}})


def test_the_url_opens_a_shared_store_at_the_current_schema(fresh_postgres_db: str) -> None:
    store = open_store(fresh_postgres_db)
    assert isinstance(store, PostgresStore) and store.shared and store.migrated_from == 0
    again = PostgresStore(fresh_postgres_db)
    assert again.migrated_from == SCHEMA_VERSION
    with psycopg.connect(fresh_postgres_db) as db:
        assert db.execute("SELECT version FROM workflows_schema").fetchone() == (SCHEMA_VERSION,)


def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_runs(fresh_postgres_db: str) -> None:
    with psycopg.connect(fresh_postgres_db, autocommit=True) as db:
        db.execute("CREATE TABLE workflows_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO workflows_schema VALUES (1)")
        for statement in MIGRATIONS[0]:
            db.execute(statement)  # type: ignore[arg-type]
        db.execute(
            "INSERT INTO handlers (handler_id, workflow_name, run_id, status, started_at) "
            "VALUES ('old', 'w', 'r1', 'running', '2025-01-01T00:00:00+00:00')"
        )
    store = PostgresStore(fresh_postgres_db)
    assert store.migrated_from == 1
    row = store.get_handler("old")
    assert row is not None and row.owner is None and row.fence == 0
    assert [c.handler_id for c in store.claim(workflows=["w"], limit=5, lease_seconds=30)] == ["old"]


@contextmanager
def _database_at(url: str, version: int) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the empty database ``url``, its schema brought to ``version`` by hand."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE workflows_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO workflows_schema VALUES (%s)", (version,))
        for statements in MIGRATIONS[:version]:
            for statement in statements:
                db.execute(statement)  # type: ignore[arg-type]
        yield db


def test_a_version_3_database_gets_its_search_index_when_opened(fresh_postgres_db: str) -> None:
    with _database_at(fresh_postgres_db, 3) as db:
        db.execute(
            "INSERT INTO handlers (handler_id, workflow_name, run_id, status, started_at, error) "
            "VALUES ('old', 'w', 'r1', 'failed', '2025-01-01T00:00:00+00:00', 'Disk Quota exceeded')"
        )
        db.execute("INSERT INTO run_index (handler_id, input_text) VALUES ('old', '{\"city\": \"Reykjavik\"}')")
    store = PostgresStore(fresh_postgres_db)
    assert store.migrated_from == 3 and SCHEMA_VERSION == 5
    for text in ("quota", "reykjavik", "OLD"):
        assert [r.row.handler_id for r in store.search_runs(RunQuery(text=text)).runs] == ["old"], text
    with psycopg.connect(fresh_postgres_db) as db:
        assert db.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() == (1,)


def test_a_version_4_database_gets_the_finer_text_statistics_and_keeps_its_runs(fresh_postgres_db: str) -> None:
    with _database_at(fresh_postgres_db, 4) as db:
        for n in range(300):
            db.execute(
                "INSERT INTO handlers (handler_id, workflow_name, run_id, status, started_at, error) "
                "VALUES (%s, 'w', 'r', 'failed', %s, %s)",
                (f"old-{n:03d}", f"2025-01-01T00:{n // 60:02d}:{n % 60:02d}+00:00", f"Disk quota {n} exceeded"),
            )
    store = PostgresStore(fresh_postgres_db)
    assert store.migrated_from == 4
    with psycopg.connect(fresh_postgres_db) as db:
        targets = db.execute(
            "SELECT attname, attstattarget FROM pg_attribute WHERE attrelid = 'search_text'::regclass AND attnum > 0"
        ).fetchall()
        assert sorted(targets) == sorted((column, TEXT_STATISTICS) for column in COLUMNS)
        # Analyzed by the upgrade: the search has its statistics at once.
        assert db.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'search_text'").fetchone() == (4,)
    page = store.search_runs(RunQuery(text="QUOTA 12", limit=5))
    assert [r.row.handler_id for r in page.runs] == ["old-129", "old-128", "old-127", "old-126", "old-125"]
    assert (page.total, page.total_capped) == (11, False)


def test_the_run_search_answers_as_the_substring_scan_did(fresh_postgres_db: str) -> None:
    store = PostgresStore(fresh_postgres_db)

    def analyze() -> None:
        # As autovacuum would: the search then picks its way from the statistics (store/pg_text.py).
        with psycopg.connect(fresh_postgres_db, autocommit=True) as db:
            db.execute("ANALYZE search_text")

    check_search_at_small_scale(store, after_filling=analyze)


def test_runs_found_by_text_keep_ids_with_quotes_backslashes_commas_and_braces(fresh_postgres_db: str) -> None:
    store = PostgresStore(fresh_postgres_db)
    odd = ['a"b', "c\\d", "e,f", "{g}", "h i", ""]
    for n, handler_id in enumerate(odd):
        store.create_handler(HandlerRow(handler_id=handler_id, workflow_name="w", run_id="r", status="failed",
                                        started_at=f"2025-01-01T00:00:0{n}+00:00", error="Zebra crossing"), {})
    page = store.search_runs(RunQuery(text="zebra", status=["failed"], limit=4))
    assert [r.row.handler_id for r in page.runs] == odd[::-1][:4] and page.total == len(odd)
    rest = store.search_runs(RunQuery(text="zebra", status=["failed"], limit=4, cursor=page.next_cursor))
    assert [r.row.handler_id for r in rest.runs] == odd[::-1][4:]


def test_text_statistics_say_how_common_a_text_is_and_what_part_of_it_to_look_up() -> None:
    statistics = TextStatistics()
    assert statistics.lookup("user-00123") == ["user-00123"] * 4, "without statistics: the whole text"
    assert statistics.share("user-00123") == 0.0
    inputs = [f'{{"user": "user-{n:05d}", "city": "{city}"}}' for n in range(200) for city in ("Oslo", "Lima")]
    # pg_stats' rows: column, null share, common values, their shares, histogram bounds, rows in the table.
    statistics.load([
        ("handler_id", 0.0, None, None, [f"{n:016x}" for n in range(100)], 1000.0),
        ("input_text", 0.0, None, None, inputs, 1000.0),
        ("result", 0.5, None, None, ["Booked Oslo"] * 10, 1000.0),
        ("error", 0.9, ["Timeout: payments", "cancelled"], [0.05, 0.05], None, 1000.0),
    ])
    assert statistics.rows == 1000.0 and not statistics.stale()
    assert statistics.share("OSLO") == pytest.approx(1 - (1 - 0.5) * (1 - 0.5))  # half the inputs, every result
    assert statistics.share("payments") == pytest.approx(0.05)
    handler_id, input_text, result, error = statistics.lookup("user-00123")
    # Every input holds "user-00" and half of them "001": the lookup keeps the rarer part.
    assert input_text == "0123"
    assert handler_id == "user-00123" and error == "user-00123"
    assert statistics.lookup('"user"')[1] == 'er"', "3 characters at least (one trigram)"
    assert statistics.lookup("İstanbul user-")[1] == "İstanbul user-", "a letter whose lower case is longer: untouched"


def test_a_newer_database_is_refused_naming_the_fix(fresh_postgres_db: str) -> None:
    PostgresStore(fresh_postgres_db)
    with psycopg.connect(fresh_postgres_db, autocommit=True) as db:
        db.execute("UPDATE workflows_schema SET version = 99")
    with pytest.raises(StoreError, match="newer than this server's .* upgrade otel-workflows-server"):
        PostgresStore(fresh_postgres_db)


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot connect to the PostgreSQL store postgresql://nobody:\*\*\*@127.0.0.1:1/x"):
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/x", connect_timeout=2)


def test_writes_need_a_claim_and_a_takeover_fences_the_old_owner_out(fresh_postgres_db: str) -> None:
    a, b = PostgresStore(fresh_postgres_db, owner="a"), PostgresStore(fresh_postgres_db, owner="b")
    _run(a)
    with pytest.raises(FencedOut, match="holds no claim"):
        a.append("h", 0, {"kind": "RunStarted"})
    claim = a.claim(workflows=["w"], limit=10, lease_seconds=0.2)
    assert [(c.handler_id, c.fence, c.previous_owner) for c in claim] == [("h", 1, None)]
    assert a.append("h", 0, {"kind": "RunStarted"}, event=NewStreamEvent(envelope={"type": "E"})) == 0
    assert b.claim(workflows=["w"], limit=10, lease_seconds=30) == [], "a live lease is not taken"
    # a's lease lapses (no heartbeat): b takes the run over with the next fencing number.
    taken = wait_for(lambda: b.claim(workflows=["w"], limit=10, lease_seconds=30), "the lease to lapse", timeout=10)
    assert [(c.fence, c.previous_owner) for c in taken] == [(2, "a")]  # type: ignore[union-attr]
    with pytest.raises(FencedOut, match="another replica claimed it"):
        a.append("h", 0, {"kind": "StepStarted"}, event=NewStreamEvent(envelope={"type": "Late"}))
    assert a.rejections == 2 and a.held() == {}
    assert a.renew(lease_seconds=30) == []
    b.append("h", 0, {"kind": "StepStarted"}, event=NewStreamEvent(envelope={"type": "E2"}))
    assert [(e.record["kind"], e.fence) for e in b.journal("h")] == [("RunStarted", 1), ("StepStarted", 2)]
    assert [e.envelope["type"] for e in b.stream("h")] == ["E", "E2"], "the refused write left nothing"
    row = b.get_handler("h")
    assert row is not None and row.owner == "b" and row.fence == 2


def test_renew_keeps_a_lease_and_reports_the_lost_ones(fresh_postgres_db: str) -> None:
    a, b = PostgresStore(fresh_postgres_db, owner="a"), PostgresStore(fresh_postgres_db, owner="b")
    _run(a, "kept")
    _run(a, "lost")
    a.claim(workflows=["w"], limit=10, lease_seconds=30)
    with psycopg.connect(fresh_postgres_db, autocommit=True) as db:
        db.execute("UPDATE handlers SET lease_until = now() - interval '1 second' WHERE handler_id = 'lost'")
    assert [c.handler_id for c in b.claim(workflows=["w"], limit=10, lease_seconds=30)] == ["lost"]
    assert a.renew(lease_seconds=30) == ["lost"]
    assert a.held() == {"kept": 1}
    assert a.owners() == {"a": 1, "b": 1}


def test_claims_hand_each_run_to_one_replica_at_a_time(fresh_postgres_db: str) -> None:
    stores = [PostgresStore(fresh_postgres_db, owner=f"r{i}") for i in range(4)]
    for i in range(40):
        _run(stores[0], f"h{i:02}")
    taken: list[list[str]] = [[] for _ in stores]

    def take(index: int) -> None:
        while claims := stores[index].claim(workflows=["w"], limit=3, lease_seconds=30):
            taken[index].extend(c.handler_id for c in claims)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    everything = [h for part in taken for h in part]
    assert sorted(everything) == [f"h{i:02}" for i in range(40)], "every run claimed exactly once"
    assert stores[0].queue_depth() == 0


def test_a_finished_run_holds_no_claim_and_its_inbox_is_acknowledged_with_the_journal(fresh_postgres_db: str) -> None:
    a, b = PostgresStore(fresh_postgres_db, owner="a"), PostgresStore(fresh_postgres_db, owner="b")
    _run(a)
    a.claim_one("h", lease_seconds=30)
    a.begin_epoch("h", {"state": {}}, waiting=True)
    a.unclaim("h")
    assert a.queue_depth() == 0, "a run waiting with an empty inbox is not work"
    item = b.post("h", kind="event", event='{"x": 1}', step=None)
    assert a.queue_depth() == 1 and b.pending(item)
    claims = a.claim(workflows=["w"], limit=5, lease_seconds=30)
    assert [(c.handler_id, c.waiting) for c in claims] == [("h", True)]
    assert [i.event for i in a.inbox("h")] == ['{"x": 1}']
    a.ack_with_next_append("h", [item])
    a.append("h", 1, {"kind": "EventEmitted"})
    assert not b.pending(item)
    a.append("h", 1, {"kind": "RunConcluded"}, update=HandlerUpdate(status="completed", completed_at="2025-01-01"))
    row = b.get_handler("h")
    assert row is not None and row.status == "completed" and row.owner is None
    a.append("h", 1, {"kind": "RunFinished"})  # the run's last record, under the same claim
    a.unclaim("h")
    assert a.held() == {} and a.owners() == {}


def test_notifications_reach_another_replica(fresh_postgres_db: str) -> None:
    a, b = PostgresStore(fresh_postgres_db, owner="a"), PostgresStore(fresh_postgres_db, owner="b")
    seen: list[tuple[str, str]] = []
    stop = b.listen(lambda kind, handler_id: seen.append((kind, handler_id)))
    try:
        _run(a)
        a.claim_one("h", lease_seconds=30)
        a.append("h", 0, {"kind": "X"}, event=NewStreamEvent(envelope={"type": "E"}))
        b.post("h", kind="cancel")
        wait_for(lambda: ("stream", "h") in seen and ("inbox", "h") in seen, "the notifications", timeout=10)
    finally:
        stop()


def test_finished_runs_are_purged_after_the_retention_period(fresh_postgres_db: str) -> None:
    a = PostgresStore(fresh_postgres_db, owner="a")
    old = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat()
    for handler_id, completed in (("old", old), ("new", None)):
        _run(a, handler_id)
        a.claim_one(handler_id, lease_seconds=30)
        a.append(handler_id, 0, {"kind": "RunConcluded"}, event=NewStreamEvent(envelope={"type": "StopEvent"}),
                 update=HandlerUpdate(status="completed", completed_at=completed or datetime.now(timezone.utc).isoformat()))
    _run(a, "running")
    cutoff = (datetime.now(timezone.utc) - timedelta(days=30)).isoformat()
    assert a.purge_finished(cutoff) == 1
    assert a.get_handler("old") is None and a.journal("old") == [] and a.stream("old") == []
    assert a.get_handler("new") is not None and a.get_handler("running") is not None


@pytest.mark.parametrize("check", [
    "test_run_view_folds_attempts_retries_state_changes_and_result",
    "test_store_searches_filters_and_pages_runs_with_their_totals",
    "test_llm_spans_under_a_step_span_become_the_runs_llm_calls",
    "test_indexed_search_and_capped_counts_answer_as_the_substring_scan_did",
])
def test_the_debuggers_queries_answer_the_same_on_postgres(
    check: str, fresh_postgres_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # The debugger's store checks (written for SQLite), run as they are on a PostgresStore;
    # the first one also runs a workflow from a script on DurableRuntime (its runs are claimed).
    import test_debugger_store

    monkeypatch.setattr(test_debugger_store, "SqliteStore", lambda path: PostgresStore(fresh_postgres_db))
    getattr(test_debugger_store, check)(tmp_path)


def test_a_run_created_claimed_is_held_from_its_first_write(fresh_postgres_db: str) -> None:
    a, b = PostgresStore(fresh_postgres_db, owner="a"), PostgresStore(fresh_postgres_db, owner="b")
    row = HandlerRow(handler_id="h", workflow_name="w", run_id="r")
    claim = a.create_claimed(row, {"state": {}}, lease_seconds=30)
    assert (claim.handler_id, claim.fence, claim.previous_owner) == ("h", 1, None)
    assert a.held() == {"h": 1}
    assert b.claim(workflows=["w"], limit=10, lease_seconds=30) == [] and b.claim_one("h", lease_seconds=30) is None
    assert a.append("h", 0, {"kind": "RunStarted"}, event=NewStreamEvent(envelope={"type": "E"})) == 0
    with pytest.raises(HandlerExists):
        a.create_claimed(row, {"state": {}}, lease_seconds=30)
    stored = b.get_handler("h")
    assert stored is not None and stored.owner == "a" and stored.fence == 1


def test_a_flush_writes_the_runs_still_held_and_refuses_only_the_one_taken_over(fresh_postgres_db: str) -> None:
    a, b = PostgresStore(fresh_postgres_db, owner="a"), PostgresStore(fresh_postgres_db, owner="b")
    for handler_id in ("kept", "lost"):
        a.create_claimed(HandlerRow(handler_id=handler_id, workflow_name="w", run_id="r"), {}, lease_seconds=30)
    with psycopg.connect(fresh_postgres_db, autocommit=True) as db:
        db.execute("UPDATE handlers SET lease_until = now() - interval '1 second' WHERE handler_id = 'lost'")
    assert [c.handler_id for c in b.claim(workflows=["w"], limit=10, lease_seconds=30)] == ["lost"]
    outcomes = a.append_many([
        Append(handler_id=handler_id, epoch=0, record={"kind": "StepStarted"}, event=NewStreamEvent(envelope={"type": "E"}),
               update=HandlerUpdate(status="completed", completed_at="2025-01-01"))
        for handler_id in ("kept", "lost")
    ])
    assert outcomes[0] == 0 and isinstance(outcomes[1], FencedOut), outcomes
    assert [e.record["kind"] for e in b.journal("kept")] == ["StepStarted"]
    assert b.journal("lost") == [] and b.stream("lost") == [], "the old owner wrote nothing for the run it lost"
    lost = b.get_handler("lost")
    assert lost is not None and lost.status == "running" and lost.owner == "b"
    assert a.held() == {"kept": 1}


def test_a_read_after_the_database_cut_its_connection_reconnects(fresh_postgres_db: str) -> None:
    store = PostgresStore(fresh_postgres_db, owner="cut")
    _run(store)
    assert store.get_handler("h") is not None
    with psycopg.connect(fresh_postgres_db, autocommit=True) as db:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (f"workflows-server {store.owner}",),
        )
    row = store.get_handler("h")  # the lost connection is replaced, once
    assert row is not None and row.handler_id == "h"
