"""Store I/O off the event loop, and group commit: one transaction per hop, shared by concurrent runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Sequence

import pytest
from server_helpers import wait_for
from starlette.testclient import TestClient

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows_server import DurableRuntime, WorkflowServer
from workflows_server.store import Append, HandlerExists, HandlerRow, SqliteStore, StoreError
from workflows_server.store.worker import WAKE_GROUP, StoreWorker


class Hop(Event):
    n: int


class Chain(Workflow):
    @step
    async def first(self, ev: StartEvent) -> Hop:
        return Hop(n=1)

    @step
    async def middle(self, ctx: Context, ev: Hop) -> Hop | StopEvent:
        if ev.n < 3:
            return Hop(n=ev.n + 1)
        return StopEvent(result=ev.n)


class RecordingStore(SqliteStore):
    """A SQLite store that remembers which thread each call ran on and what each flush wrote."""

    def __init__(self, path: Path, fail_for: str | None = None) -> None:
        super().__init__(path)
        self.threads: set[int] = set()
        self.batches: list[list[tuple[str, str]]] = []
        self.fail_for = fail_for

    def append_many(self, entries: Sequence[Append], index: Sequence[Any] = ()) -> list[int | None | StoreError]:
        self.threads.add(threading.get_ident())
        if self.fail_for is not None and any(e.handler_id == self.fail_for for e in entries):
            self.fail_for = None
            raise StoreError("disk I/O error (injected)")
        self.batches.append([(e.handler_id, str(e.record["kind"])) for e in entries])
        return super().append_many(entries, index)

    def get_handler(self, handler_id: str) -> Any:
        self.threads.add(threading.get_ident())
        return super().get_handler(handler_id)


async def test_every_store_call_runs_off_the_event_loop(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "runs.db")
    runtime = DurableRuntime(store)
    assert await Chain(runtime=runtime, timeout=10).run(run_id="one") == 3
    await runtime.unfinished()
    assert store.threads and threading.get_ident() not in store.threads


async def test_the_records_of_one_hop_are_one_transaction(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "runs.db")
    assert await Chain(runtime=DurableRuntime(store), timeout=10).run(run_id="one") == 3
    # A step's end, the event it emitted and the next step's start reach the store together:
    # each StepStarted after the first shares its flush with the StepFinished before it.
    for batch in store.batches:
        kinds = [kind for _, kind in batch]
        if "StepStarted" in kinds and kinds.index("StepStarted") > 0:
            assert "StepFinished" in kinds[: kinds.index("StepStarted")], kinds
    starts = sum(kind == "StepStarted" for batch in store.batches for _, kind in batch)
    assert starts == 4
    assert len(store.batches) <= starts + 2, store.batches  # the start, one flush per hop, the end


async def test_concurrent_runs_share_flushes(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "runs.db")
    runtime = DurableRuntime(store)
    results = await asyncio.gather(*(Chain(runtime=runtime, timeout=10).run(run_id=f"r{i}") for i in range(20)))
    assert results == [3] * 20
    shared = [batch for batch in store.batches if len({handler for handler, _ in batch}) > 1]
    assert shared, "no flush wrote the records of more than one run"
    assert runtime.worker.stats.records > runtime.worker.stats.flushes


async def test_a_failed_write_fails_its_run_and_leaves_no_hole_in_its_journal(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "runs.db", fail_for="doomed")
    runtime = DurableRuntime(store)
    doomed = Chain(runtime=runtime, timeout=10).run(run_id="doomed")
    fine = Chain(runtime=runtime, timeout=10).run(run_id="fine")
    with pytest.raises(StoreError, match="injected"):
        await doomed
    assert await fine == 3
    await runtime.worker.drain()
    # Nothing of the doomed run was written after the failed flush: its journal is whole up to there.
    kinds = [entry.record["kind"] for entry in store.journal("doomed")]
    assert "RunConcluded" not in kinds
    assert [entry.record["kind"] for entry in store.journal("fine")][-1] == "RunFinished"


class StalledStore(SqliteStore):
    """A SQLite store whose journal writes wait until ``go`` is set (a slow disk, a distant database)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.flushing = threading.Event()
        self.go = threading.Event()

    def append_many(self, entries: Sequence[Append], index: Sequence[Any] = ()) -> list[int | None | StoreError]:
        self.flushing.set()
        self.go.wait(30)
        return super().append_many(entries, index)


async def test_a_read_does_not_wait_for_a_flush_under_way(tmp_path: Path) -> None:
    store = StalledStore(tmp_path / "runs.db")
    runtime = DurableRuntime(store)
    run = asyncio.ensure_future(Chain(runtime=runtime, timeout=10).run(run_id="one"))
    try:
        assert await asyncio.to_thread(store.flushing.wait, 10), "the run's first flush never started"
        # The flush holds the writing thread; the row written before it is read meanwhile.
        row = await asyncio.wait_for(runtime.worker.read(store.get_handler, "one"), timeout=5)
        assert row is not None and row.status == "running"
    finally:
        store.go.set()
    assert await run == 3


async def test_the_writers_of_one_flush_wake_a_few_at_a_time(tmp_path: Path) -> None:
    # Woken all at once they would all take their next hop in one loop iteration, and
    # whatever else is ready (a /health request) would wait behind every one of them.
    store = StalledStore(tmp_path / "runs.db")
    worker = StoreWorker(store)
    await worker.write(store.create_handler, HandlerRow(handler_id="h", workflow_name="w", run_id="r"), {})
    iterations = 0

    async def count_iterations() -> None:
        nonlocal iterations
        while True:
            iterations += 1
            await asyncio.sleep(0)

    woke_at: list[int] = []

    async def write(n: int) -> None:
        await worker.append(Append(handler_id="h", epoch=0, record={"kind": "Note", "n": n}), chain=object(),
                            settle=lambda outcome: None)
        woke_at.append(iterations)

    counter = asyncio.ensure_future(count_iterations())
    try:
        first = asyncio.ensure_future(write(0))  # its flush holds the thread while the next 12 queue
        assert await asyncio.to_thread(store.flushing.wait, 10)
        queued = [asyncio.ensure_future(write(n)) for n in range(1, 13)]
        await asyncio.sleep(0)
        store.go.set()
        await asyncio.wait_for(asyncio.gather(first, *queued), timeout=10)
    finally:
        counter.cancel()
        await worker.aclose()
    assert len(woke_at) == 13 and worker.stats.records == 13
    assert worker.stats.flushes == 2
    # The 12 records of the second flush: their writers woke in ceil(12 / WAKE_GROUP) iterations.
    assert len(set(woke_at[1:])) == -(-12 // WAKE_GROUP) > 1


def _serving_chain(store: SqliteStore) -> TestClient:
    """A test client of a server on ``store`` serving ``Chain`` as "chain" (use it in a ``with``)."""
    server = WorkflowServer(store)
    server.add_workflow("chain", Chain(timeout=10))
    return TestClient(server.app, base_url="http://localhost")


class CountsProbes(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.probes = 0

    def probe(self) -> None:
        self.probes += 1
        super().probe()


def test_health_takes_a_busy_stores_recent_writes_for_its_check(tmp_path: Path) -> None:
    # A probe write waits in the write queue behind the flushes: a server whose writes go
    # through answers /health from them, at once.
    store = CountsProbes(tmp_path / "runs.db")
    with _serving_chain(store) as client:
        done = client.post("/workflows/chain/run", json={})
        assert done.status_code == 200 and done.json()["status"] == "completed", done.text
        health = client.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "healthy"}
    assert store.probes == 0


class RefusesNewRuns(SqliteStore):
    """A SQLite store that cannot write a new run's row (as on a full disk), while ``refusing``."""

    refusing = True

    def create_handlers(self, runs: Sequence[Any]) -> None:
        if self.refusing:
            raise StoreError(f"the SQLite store {self.path} cannot write: database or disk is full")
        super().create_handlers(runs)


def test_a_run_refused_at_its_start_by_the_store_turns_health_to_503(tmp_path: Path) -> None:
    # No run is stranded (none started): the failed write itself reaches the health.
    store = RefusesNewRuns(tmp_path / "runs.db")
    with _serving_chain(store) as client:
        refused = client.post("/workflows/chain/run", json={})
        assert refused.status_code == 503 and "full" in refused.json()["detail"], refused.text
        health = client.get("/health")
        assert health.status_code == 503 and "full" in health.json()["error"], health.text
        store.refusing = False
        wait_for(lambda: client.get("/health").status_code == 200, "/health to recover (the probe writes again)",
                 timeout=10)
        done = client.post("/workflows/chain/run", json={})
        assert done.status_code == 200 and done.json()["status"] == "completed", done.text


async def test_a_refused_write_of_one_request_is_not_a_store_failure(tmp_path: Path) -> None:
    # A taken handler id is this request's problem, not the store's: the health hears nothing.
    store = SqliteStore(tmp_path / "runs.db")
    runtime = DurableRuntime(store)
    heard: list[StoreError] = []
    runtime.worker.on_failure = heard.append
    assert await Chain(runtime=runtime, timeout=10).run(run_id="one") == 3
    row = await runtime.worker.read(store.get_handler, "one")
    assert row is not None
    with pytest.raises(HandlerExists):
        await runtime.worker.write(store.create_handler, row, {})
    assert heard == []
