"""A check of the run search at small scale, shared by the SQLite and the PostgreSQL stores:
a few thousand runs written with ``create_handlers``, every filter and many texts, each
answer compared, page by page, with what a plain substring scan answers."""

from __future__ import annotations

import json
from typing import Callable

import pytest

from workflows_server.store import HandlerExists, HandlerRow, HandlerUpdate, NewRun, RunStore, sql
from workflows_server.store.queries import RunIndexUpdate, RunQuery


def reference(rows: list[dict[str, object]], text: str | None = None, **filters: object) -> list[str]:
    """What the run search answered before its full-text index: a case-insensitive substring
    of the run's id, input, result or error (``LOWER(...) LIKE``), newest first."""
    def keep(r: dict[str, object]) -> bool:
        if text is not None and not any(text.lower() in str(r[k] or "").lower()
                                        for k in ("handler_id", "input", "result", "error")):
            return False
        return all(r[key] in value if isinstance(value, list) else r[key] == value for key, value in filters.items())

    chosen = sorted((r for r in rows if keep(r)), key=lambda r: (str(r["started_at"]), str(r["handler_id"])), reverse=True)
    return [str(r["handler_id"]) for r in chosen]


def every_page(store: RunStore, query: RunQuery) -> tuple[list[str], int, bool]:
    """The ids of every page of ``query``, following the cursors, and the first page's count."""
    first = page = store.search_runs(query)
    ids = [r.row.handler_id for r in page.runs]
    while page.next_cursor:
        page = store.search_runs(RunQuery(**{**query.__dict__, "cursor": page.next_cursor}))
        ids += [r.row.handler_id for r in page.runs]
    return ids, first.total, first.total_capped


def check_search_at_small_scale(store: RunStore, *, after_filling: Callable[[], None] = lambda: None) -> None:
    """The answers of ``store`` (empty) once filled (then ``after_filling`` is called).

    The count cap is lowered to 150 and the runs a page is read from by their ids to 40,
    so that every way of answering a text is exercised on a small store: rare (from the
    ids the index found, read one by one), less rare (a walk of the list keeping the ids
    found), common (a walk of the list testing each run), and capped counts.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sql, "COUNT_CAP", 150)
        patch.setattr(sql, "DRIVE_FROM_FOUND", 40)
        _check(store, after_filling)


def _check(store: RunStore, after_filling: Callable[[], None]) -> None:
    cities = ["Lisbon", "Oslo", "Kyoto", "São Paulo", "Ørsta"]
    rows: list[dict[str, object]] = []
    batch: list[NewRun] = []
    for n in range(2400):
        status = ["completed", "failed", "running", "cancelled"][n % 7 % 4]
        handler_id = f"run-{(n * 7919) % 10007:05d}"
        started = f"2030-01-{1 + n % 28:02d}T{n % 24:02d}:00:{n % 60:02d}+00:00"  # ties on started_at, too
        text = f'{{"question": "Trip {n} to {cities[n % 5]}", "note": "{"50%_off" if n % 97 == 0 else "full price"}"}}'
        result = {"value": {"result": f"Booked {cities[(n + 1) % 5]}"}, "type": "StopEvent"} if status == "completed" else None
        error = f"TimeoutError: payments slow at step {n % 3}" if status == "failed" else None
        session = f"s{n % 300}"
        batch.append(NewRun(
            row=HandlerRow(handler_id=handler_id, workflow_name=f"wf{n % 3}", run_id=handler_id, status=status,
                           started_at=started, result=result, error=error,
                           completed_at=None if status == "running" else started,
                           waiting_since=started if status == "running" and n % 2 else None),
            index=RunIndexUpdate(session_id=session, input_text=text),
        ))
        rows.append({"handler_id": handler_id, "input": text, "result": None if result is None else json.dumps(result),
                     "error": error, "started_at": started, "status": status, "workflow_name": f"wf{n % 3}",
                     "session": session, "waiting": status == "running" and bool(n % 2)})
        if len(batch) == 500:
            store.create_handlers(batch)
            batch = []
    store.create_handlers(batch)
    after_filling()
    with pytest.raises(HandlerExists, match="none was written"):
        store.create_handlers([NewRun(row=HandlerRow(handler_id="fresh", workflow_name="wf0", run_id="x")),
                               NewRun(row=HandlerRow(handler_id="run-00000", workflow_name="wf0", run_id="x"))])
    assert store.get_handler("fresh") is None

    checks: list[tuple[RunQuery, list[str]]] = [
        (RunQuery(limit=97), reference(rows)),
        (RunQuery(status=["failed"], limit=40), reference(rows, status="failed")),
        (RunQuery(status=["failed", "cancelled"], limit=60), reference(rows, status=["failed", "cancelled"])),
        (RunQuery(workflow_name=["wf1"], limit=200), reference(rows, workflow_name="wf1")),
        (RunQuery(session_id="s7"), reference(rows, session="s7")),
        (RunQuery(status=["running"], waiting=True, limit=30), reference(rows, status="running", waiting=True)),
        (RunQuery(status=["running"], waiting=False, limit=30), reference(rows, status="running", waiting=False)),
        (RunQuery(started_after="2030-01-03T00:00:00+00:00", started_before="2030-01-05T00:00:00+00:00"),
         [i for i in reference(rows) if "2030-01-03" <= next(r["started_at"] for r in rows if r["handler_id"] == i)
          < "2030-01-05"]),
    ]
    for text in ("trip 12", "TRIP 1", "lisbon", "são paulo", "ØRSTA", "payments slow at step 2", "50%_o", "%_o",
                 "run-0001", '"question"', "booked oslo", "timeouterror", "nowhere at all"):
        checks.append((RunQuery(text=text, limit=50), reference(rows, text=text)))
    checks.append((RunQuery(text="lisbon", status=["failed"]), reference(rows, text="lisbon", status="failed")))
    checks.append((RunQuery(text="trip", workflow_name=["wf2"], limit=300), reference(rows, text="trip", workflow_name="wf2")))
    for query, expected in checks:
        ids, total, capped = every_page(store, query)
        assert ids == expected, query
        assert (total, capped) == (min(len(expected), 150), len(expected) > 150), query
    # Oldest first reads the same runs the other way round.
    assert every_page(store, RunQuery(text="kyoto", oldest_first=True, limit=33))[0] == reference(rows, text="kyoto")[::-1]

    # The index follows every change of a run's text: its error, its input, a restart, its deletion.
    target = str(next(r["handler_id"] for r in rows if r["status"] == "running"))
    if store.shared:
        assert store.claim_one(target, lease_seconds=30) is not None  # type: ignore[attr-defined]
    store.update_handler(target, HandlerUpdate(status="failed", error="Quokka escaped"))
    assert [r.row.handler_id for r in store.search_runs(RunQuery(text="quokka")).runs] == [target]
    other = str(rows[5]["handler_id"])
    store.index_run(other, RunIndexUpdate(input_text='{"question": "Zanzibar please"}'))
    assert [r.row.handler_id for r in store.search_runs(RunQuery(text="zanzibar")).runs] == [other]
    store.restart_handler(HandlerRow(handler_id=target, workflow_name="wf0", run_id="again"), {})
    assert store.search_runs(RunQuery(text="quokka")).runs == []
    assert store.delete_handler(other) and store.search_runs(RunQuery(text="zanzibar")).runs == []
    store.index_run("later", RunIndexUpdate(input_text="Yokohama first"))  # indexed before its run exists
    store.create_handler(HandlerRow(handler_id="later", workflow_name="wf9", run_id="x"), {})
    assert [r.row.handler_id for r in store.search_runs(RunQuery(text="yokohama")).runs] == ["later"]
    assert store.workflow_names() == ["wf0", "wf1", "wf2", "wf9"]
    assert store.purge_finished("2031-01-01T00:00:00+00:00", limit=5000) > 0
    assert store.search_runs(RunQuery(text="booked")).runs == []
