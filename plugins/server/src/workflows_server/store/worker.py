"""``StoreWorker``: a store's calls off the event loop, and its writes group-committed.

Stores are blocking driver code (``sqlite3``, psycopg's sync API). The server never
calls them on its event loop: every write runs on the worker's writing thread, so a
slow disk or a distant database holds up only the runs waiting for it, never the loop
(other runs, streams, ``/health``).

Writes go through one queue, in the order they were asked for. Journal records
(``append``) that are ready at the same moment, of one run or many, are flushed in
one transaction (``RunStore.append_many``), with the debugger's index changes queued
meanwhile (``index``): while a flush is on the thread, the next records queue; the next
flush takes them all as soon as the previous one returns. A run waits for the flush
its records are in; no future or callback is made per record. Once a flush is done, its
writers are woken a few at a time, one loop iteration each (``WAKE_GROUP``), so that
the loop never runs all their next hops in one go.
Reads (``read``) go at once to threads of their own when the store has them
(``RunStore.read_threads``; else to the writing thread): they see what earlier awaited
writes wrote, and never wait for a flush.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, ParamSpec, TypeVar

from workflows_server.store.base import RunStore
from workflows_server.store.lanes import Lane
from workflows_server.store.queries import IndexEntry
from workflows_server.store.records import Append, FencedOut, HandlerExists, StoreError

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("workflows_server.store")


WAKE_GROUP = 4
"""How many records' writers wake in one loop iteration once their flush is done (see ``_wake``)."""

Settle = Callable[[Any], None]
"""Called with a queued write's outcome once its flush is done: its value, or the exception it raised."""


def _failed_store(outcome: Any) -> bool:
    """Whether a write's outcome says the store could not write (not a refusal of this one write)."""
    return isinstance(outcome, StoreError) and not isinstance(outcome, (HandlerExists, FencedOut))


def _ignore(error: StoreError) -> None:
    return None


class _Queued:
    """One write waiting for the next flush: journal records or another store call."""

    __slots__ = ("append", "chain", "index", "call", "settle")

    def __init__(
        self, settle: Settle, *, append: Append | None = None, chain: object | None = None,
        index: IndexEntry | None = None, call: Callable[[], Any] | None = None,
    ) -> None:
        self.settle = settle
        self.append = append
        self.chain = chain
        """The writer whose records ``append`` continues: after one of them fails, none is written."""
        self.index = index
        self.call = call


@dataclass(kw_only=True)
class FlushStats:
    """What the worker has written, for benchmarks and ``/api/replica``."""

    flushes: int = 0
    records: int = 0
    written_at: float = 0.0
    """``time.monotonic()`` when a write last succeeded (0: none yet)."""


class StoreWorker:
    """Runs ``store``'s calls on a thread of its own; see the module docstring."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.stats = FlushStats()
        self._writer = Lane("workflows-store")
        # Reads on threads of their own when the store allows it: a read never queues behind a flush.
        self._readers = Lane("workflows-store-read", store.read_threads) if store.read_threads > 0 else self._writer
        self._queue: list[_Queued] = []
        self._waking: list[asyncio.Future[None]] = []
        """Set once the records queued now are done: one future per ``WAKE_GROUP`` records (see ``_wake``)."""
        self._in_group = 0
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        # Chains (writers) one of whose records failed: their later records are refused,
        # so a run's journal never has a hole where a failed record was.
        self._broken: dict[int, Exception] = {}
        self.on_failure: Callable[[StoreError], None] = _ignore
        """Called on the loop once per flush that the store could not write (see ``_failed_store``), before its
        writes are settled: whatever write it was, the server's health hears of it (``runs.health``)."""

    def __repr__(self) -> str:
        return f"StoreWorker({self.store!r})"

    # ------------------------------------------------------------------ reads
    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` (a read method of the store) on a reading thread (see ``RunStore.read_threads``)."""
        return await self._readers.run(functools.partial(fn, *args, **kwargs))

    # ------------------------------------------------------------------ writes
    def append(self, entry: Append, *, chain: object, settle: Settle) -> asyncio.Future[None]:
        """Queue a journal record; returns a future set once it (and its flush) is done.

        ``settle`` is called first, on the loop, with the record's outcome: its stream
        sequence (``None`` if it put no event on the stream), or the exception that kept
        it from the store. One future serves ``WAKE_GROUP`` records of a flush, and no callback
        is scheduled per record: a durable step pays for its hop, not for each record.
        ``chain`` is the writer the record belongs to: once one of its records failed,
        its later records fail with the same error rather than leave a hole.
        """
        self._enqueue(_Queued(settle, append=entry, chain=chain))
        return self._done_future()

    def index(self, entry: IndexEntry) -> asyncio.Future[None]:
        """Queue a change of a run's index entry; it is written with the next flush of records."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(_Queued(functools.partial(settle_future, done), index=entry))
        return done

    def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """``fn(*args, **kwargs)`` on the store's thread, after every write queued before it."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(_Queued(functools.partial(settle_future, done), call=functools.partial(fn, *args, **kwargs)))
        return done

    def forget(self, chain: object) -> None:
        """The writer ``chain`` is closed: forget that its records failed, if they did."""
        self._broken.pop(id(chain), None)

    def _enqueue(self, item: _Queued) -> None:
        if self._closed:
            raise StoreError(f"the store {self.store.url} is closed")
        self._queue.append(item)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_all())

    def _done_future(self) -> asyncio.Future[None]:
        if self._in_group == 0:
            self._waking.append(asyncio.get_running_loop().create_future())
        self._in_group = (self._in_group + 1) % WAKE_GROUP
        return self._waking[-1]

    @staticmethod
    async def _wake(waking: list[asyncio.Future[None]]) -> None:
        # Runs woken by one future all take their next hop in the same loop iteration. A flush
        # of 50 runs' records would hold the loop for 50 hops, and a /health request or another
        # run's I/O would wait behind them; woken a group at a time, one iteration each, they
        # take turns with whatever else is ready. The next flush takes what they queued meanwhile.
        try:
            for i, done in enumerate(waking):
                if i:
                    await asyncio.sleep(0)
                done.set_result(None)
        except BaseException:
            for done in waking:
                done.cancel()
            raise

    async def _flush_all(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                waking, self._waking, self._in_group = self._waking, [], 0
                try:
                    outcomes = await self._writer.run(functools.partial(self._write, batch))
                except Exception as exc:  # the thread could not take the batch
                    outcomes = [exc] * len(batch)
                except BaseException:  # the flusher is cancelled (the loop is closing): no waiter is left hanging
                    for item in batch:
                        item.settle(asyncio.CancelledError())
                    for done in waking:
                        done.cancel()
                    raise
                failure = next((outcome for outcome in outcomes if _failed_store(outcome)), None)
                if failure is not None:
                    self.on_failure(failure)
                for item, outcome in zip(batch, outcomes):
                    try:
                        item.settle(outcome)
                    except Exception:  # a writer's bookkeeping must not keep the others' outcomes from them
                        logger.exception("settling a write of %s failed", self.store.url)
                await self._wake(waking)
        finally:
            self._flusher = None

    def _write(self, batch: list[_Queued]) -> list[Any]:
        # On the store's thread. Consecutive records share one transaction; a call
        # between them keeps its place in the order.
        outcomes: list[Any] = [None] * len(batch)
        records: list[int] = []
        index: list[int] = []

        def flush_records() -> None:
            live = [i for i in records if id(batch[i].chain) not in self._broken]
            for i in records:
                broken = self._broken.get(id(batch[i].chain))
                if broken is not None:
                    outcomes[i] = broken
            entries = [batch[i].index for i in index]
            if live or entries:
                try:
                    written: list[Any] = list(self.store.append_many(
                        [batch[i].append for i in live], [e for e in entries if e is not None]  # type: ignore[misc]
                    ))
                    self.stats.flushes += 1
                    self.stats.records += len(live)
                    self.stats.written_at = time.monotonic()
                except Exception as exc:
                    written = [exc] * len(live)
                    for i in index:
                        outcomes[i] = exc
                for i, outcome in zip(live, written):
                    outcomes[i] = outcome
                    if isinstance(outcome, Exception):
                        self._broken[id(batch[i].chain)] = outcome
            records.clear()
            index.clear()

        for i, item in enumerate(batch):
            if item.append is not None:
                records.append(i)
                continue
            if item.index is not None:
                index.append(i)
                continue
            flush_records()
            assert item.call is not None
            try:
                outcomes[i] = item.call()
            except Exception as exc:
                outcomes[i] = exc
        flush_records()
        return outcomes

    # ------------------------------------------------------------------ lifetime
    async def drain(self) -> None:
        """Wait until every write queued so far is done."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def aclose(self) -> None:
        """Finish the queued writes, then close the store and the thread."""
        await self.drain()
        self._closed = True
        if self._readers is not self._writer:
            self._readers.close()
            await asyncio.to_thread(self._readers.join)  # no read is under way as the store closes
        await self._writer.run(self.store.close)
        self._writer.close()


def settle_future(future: asyncio.Future[Any], outcome: Any) -> None:
    """Give ``future`` a write's outcome (see ``Settle``): its value, its exception, or cancelled."""
    if future.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        future.cancel()
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


__all__ = ["FlushStats", "Settle", "StoreWorker", "settle_future"]
