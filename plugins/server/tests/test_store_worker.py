"""Store I/O off the event loop, and group commit: one transaction per hop, shared by concurrent runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Sequence

import pytest

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows_server import DurableRuntime
from workflows_server.store import Append, SqliteStore, StoreError


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
