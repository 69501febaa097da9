"""``StoreHealth``: a store that takes probes but refuses writes again is probed ever more slowly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workflows_server.runs import health as health_module
from workflows_server.runs.health import BACKOFF, StoreHealth
from workflows_server.runs.tasks import Tasks
from workflows_server.store import SqliteStore, StoreError
from workflows_server.store.worker import StoreWorker


class FlakyStore(SqliteStore):
    """A SQLite store whose probe fails while ``refusing`` is set."""

    refusing = False

    def probe(self) -> None:
        if self.refusing:
            raise StoreError(f"the SQLite store {self.path} cannot write: database or disk is full")
        super().probe()


class _RecordedPauses:
    """``asyncio`` as the health module sees it, but for ``sleep``: recorded, not slept."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    def __getattr__(self, name: str) -> object:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.taken.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The recovery's pauses, recorded instead of slept."""
    recorded = _RecordedPauses()
    monkeypatch.setattr(health_module, "asyncio", recorded)
    return recorded.taken


@dataclass
class Watched:
    """A ``StoreHealth`` over a real store and worker; ``recovered`` gets an item at each recovery."""

    store: FlakyStore
    health: StoreHealth
    recovered: asyncio.Queue[None]


@pytest.fixture
async def watched(tmp_path: Path) -> AsyncIterator[Watched]:
    store = FlakyStore(tmp_path / "runs.db")
    worker, tasks, recovered = StoreWorker(store), Tasks(), asyncio.Queue[None]()

    async def recover() -> bool:
        recovered.put_nowait(None)
        return True

    yield Watched(store, StoreHealth(store, worker, tasks, recover), recovered)
    await tasks.close()
    await worker.aclose()


async def _fail_and_recover(health: StoreHealth, recovered: asyncio.Queue[None]) -> None:
    health.failed(StoreError("database or disk is full"))
    assert health.error is not None  # /health says 503 until a probe and the recovery succeed
    await asyncio.wait_for(recovered.get(), timeout=10)
    assert health.error is None


async def test_a_store_failing_again_soon_after_recovering_is_probed_at_growing_pauses(
    watched: Watched, pauses: list[float]
) -> None:
    health, recovered = watched.health, watched.recovered
    for _ in range(4):  # the store takes each probe, then refuses the next write
        await _fail_and_recover(health, recovered)

    first, longest = BACKOFF
    assert pauses == [first, first * 2, first * 4, first * 8]
    assert health.failures == 4


async def test_a_store_that_stayed_well_starts_its_next_recovery_from_the_first_pause(
    watched: Watched, pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    health, recovered = watched.health, watched.recovered
    await _fail_and_recover(health, recovered)
    monkeypatch.setattr(health_module, "STEADY", 0.0)  # as if the store had written well for long since
    await _fail_and_recover(health, recovered)

    assert pauses == [BACKOFF[0], BACKOFF[0]]


async def test_probes_that_keep_failing_double_their_pause_up_to_the_longest(
    watched: Watched, pauses: list[float]
) -> None:
    health, recovered, store = watched.health, watched.recovered, watched.store
    store.refusing = True
    health.failed(StoreError("database or disk is full"))

    async def nine_probes() -> None:
        while len(pauses) < 9:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(nine_probes(), timeout=10)
    assert health.error is not None and "full" in str(health.error)
    store.refusing = False
    await asyncio.wait_for(recovered.get(), timeout=10)

    first, longest = BACKOFF
    assert pauses[:6] == [first * 2**i for i in range(6)] and pauses[6:] == [longest] * (len(pauses) - 6)
