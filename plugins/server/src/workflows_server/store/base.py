"""``RunStore``, the interface every store implements (its records are in ``store.records``), and ``SharedStore``.

A run (a *handler*, in the HTTP API's words) is kept as:

- its row (``HandlerRow``): workflow, status, result, timestamps, trace carrier;
- its base snapshots (``Snapshot``): a ``Context.to_dict()`` payload per *epoch*; a run
  starts in epoch 0 and begins a new epoch each time it is continued from a fresh
  snapshot (after waiting outside memory, or after a restart);
- its journal (``JournalEntry``): every record the run wrote (``workflows.runtime.codec``
  form), tagged with its epoch and the time it was written; the run's live form is the
  latest snapshot plus the records of its epoch;
- its stream (``StreamEvent``): what ``GET /events/{id}`` serves, numbered from 0.

The interface is synchronous and blocking: a store is plain driver code, easy to test
and to implement for another engine. The server never calls it on its event loop:
``workflows_server.store.worker.StoreWorker`` runs every call on a thread of its own
and commits the journal records of every run that are ready together
(``append_many``). Stores use plain types at the boundary (dicts, strings, ISO-8601
timestamps), so the SQL of one engine never leaks into the rest.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from workflows_server.store.index import RunIndex
from workflows_server.store.queries import IndexEntry, RunIndexUpdate
from workflows_server.store.records import (
    Append,
    Claim,
    InboxItem,
    HandlerRow,
    HandlerUpdate,
    JournalEntry,
    NewStreamEvent,
    Snapshot,
    StoreError,
    StreamEvent,
)


@dataclass(kw_only=True)
class NewRun:
    """A run to insert with ``RunStore.create_handlers``: its row, its epoch-0 snapshot and its index entry."""

    row: HandlerRow
    base: dict[str, Any] = field(default_factory=dict)
    index: RunIndexUpdate | None = None


class RunStore(RunIndex):
    """Where runs, their journals, snapshots and streams are kept; see the module docstring.

    Implementations must make each method one atomic write (a crash leaves it done or
    not done). The server calls every write from one thread (the store worker's); reads
    come from that thread too, unless ``read_threads`` says the store serves reads on
    threads of their own.
    """

    url: str = ""
    read_threads: int = 0
    """How many threads may read at once, beside the writing thread (each read method then
    runs on one of them, concurrently with writes: the store needs a connection per
    thread). 0: reads run on the writing thread, one call at a time."""
    shared: bool = False
    """True for a store several server processes share (it is then a ``SharedStore``)."""

    # ---- handlers
    @abstractmethod
    def create_handler(self, row: HandlerRow, base: dict[str, Any]) -> None:
        """Insert a run and its epoch-0 snapshot; ``HandlerExists`` if the id is taken."""

    def create_handlers(self, runs: Sequence[NewRun]) -> None:
        """Insert many runs, each with its epoch-0 snapshot and its index entry (``index_run``).

        For imports and for filling a store (``benchmarks/runs_at_scale.py``): the SQL stores
        write them in one transaction, so a thousand runs cost about what one does;
        ``HandlerExists`` if an id is taken, and nothing is written then. This default
        writes them one by one with ``create_handler`` and ``index_run`` (not atomic).
        """
        for run in runs:
            self.create_handler(run.row, run.base)
            if run.index is not None:
                self.index_run(run.row.handler_id, run.index)

    @abstractmethod
    def restart_handler(self, row: HandlerRow, base: dict[str, Any]) -> None:
        """Start a finished handler again as a new run (``row.run_id``) from ``base``, in a new epoch."""

    @abstractmethod
    def claim_resume(self, resume_id: str, handler_id: str) -> str | None:
        """Record that a saved context (``Context.resume_id``) is resumed by ``handler_id``, once.

        Returns ``None`` when it was not resumed before, else the handler that resumed it
        (nothing is recorded then): a saved context resumed twice would run the work after
        its snapshot twice (docs/security.md).
        """

    @abstractmethod
    def get_handler(self, handler_id: str) -> HandlerRow | None: ...

    @abstractmethod
    def list_handlers(
        self, *, status: Sequence[str] | None = None, workflow_name: Sequence[str] | None = None
    ) -> list[HandlerRow]:
        """Runs matching every given filter (each a list of accepted values), oldest first."""

    @abstractmethod
    def update_handler(self, handler_id: str, update: HandlerUpdate) -> None: ...

    @abstractmethod
    def delete_handler(self, handler_id: str) -> bool:
        """Remove a run and everything kept of it; False if there was none."""

    # ---- journal and snapshots
    def append(
        self,
        handler_id: str,
        epoch: int,
        record: dict[str, Any],
        *,
        event: NewStreamEvent | None = None,
        update: HandlerUpdate | None = None,
    ) -> int | None:
        """Write one journal record, with the stream event and row change it implies, atomically.

        Returns the stream event's sequence number (``None`` without an event).
        """
        (outcome,) = self.append_many([Append(handler_id=handler_id, epoch=epoch, record=record, event=event, update=update)])
        if isinstance(outcome, StoreError):
            raise outcome
        return outcome

    @abstractmethod
    def append_many(
        self, entries: Sequence[Append], index: Sequence[IndexEntry] = ()
    ) -> list[int | None | StoreError]:
        """Write ``entries`` (of one run or many) in one transaction, in order, with the changes
        ``index`` makes to the debugger's run index (``index_run``).

        Returns, per entry, its stream sequence number (``None`` without an event), or the
        ``StoreError`` that refused that entry alone (a ``FencedOut`` run on a shared
        store) while the others were written. A failure of the whole write (disk full,
        connection lost) raises ``StoreError`` and writes nothing.
        """

    @abstractmethod
    def begin_epoch(self, handler_id: str, payload: dict[str, Any], *, waiting: bool, continued: bool = False) -> int:
        """Store ``payload`` as the run's new base snapshot and return the new epoch.

        ``waiting`` marks the run as held by the store alone until an event arrives;
        ``continued`` counts one more continuation of the run.
        """

    @abstractmethod
    def set_waiting(self, handler_id: str, waiting: bool) -> None: ...

    @abstractmethod
    def latest_snapshot(self, handler_id: str) -> Snapshot | None: ...

    @abstractmethod
    def snapshots(self, handler_id: str) -> list[Snapshot]: ...

    @abstractmethod
    def journal(self, handler_id: str, *, epoch: int | None = None) -> list[JournalEntry]:
        """The run's records in order (only those of ``epoch`` when given)."""

    # ---- stream
    @abstractmethod
    def add_stream_event(self, handler_id: str, event: NewStreamEvent, update: HandlerUpdate | None = None) -> int:
        """Append an event to the stream without a journal record (a run ended by the server itself)."""

    @abstractmethod
    def stream(self, handler_id: str, *, after: int = -1, limit: int = 1000) -> list[StreamEvent]:
        """Stream events with a sequence number above ``after``, in order, at most ``limit``."""

    @abstractmethod
    def last_sequence(self, handler_id: str) -> int:
        """The highest sequence number of the run's stream (-1 when it is empty)."""

    # ---- retention
    @abstractmethod
    def purge_finished(self, before: str, *, limit: int = 500) -> int:
        """Delete up to ``limit`` finished runs (and all kept of them) completed before ``before`` (ISO 8601).

        Returns how many were deleted; running and waiting runs are never touched.
        """

    # ---- ownership and health
    def own(self) -> None:
        """Become the one server process that runs this store's runs (``StoreOwned`` if another is).

        A store of one process (SQLite) is taken with an OS lock; a shared store needs
        nothing (its runs are claimed one by one, see ``SharedStore``).
        """

    def probe(self) -> None:
        """Make one small real write, reopening or reconnecting first if an earlier one failed;
        raise ``StoreError`` with the reason if the store cannot write now."""
        raise NotImplementedError(f"{type(self).__name__} cannot probe its writes")

    # ---- lifetime
    @abstractmethod
    def close(self) -> None: ...


class SharedStore(RunStore):
    """A store several server processes (replicas) share: runs are claimed with leases and fenced.

    Each running run is held by at most one replica (its *owner*) whose lease is renewed
    by ``renew``; a claim increments the run's fencing number, and every write for a run
    (``append``, ``begin_epoch``, ``set_waiting``, ``update_handler``,
    ``add_stream_event``) checks that this process's claim is still the run's latest:
    otherwise it raises ``FencedOut`` and writes nothing. Writes for a run this process
    does not hold are refused the same way, so a replica writes only what it owns.
    New and released runs are free (no owner); free runs that can run, and runs whose
    owner's lease lapsed, are what ``claim`` hands out. ``create_handler`` makes a free
    run; ``create_claimed`` makes one this process holds; ``claim_one`` takes a given run.
    """

    shared = True
    owner: str = ""
    """This process's replica id (the owner its claims are recorded under)."""

    @abstractmethod
    def claim(self, *, workflows: Sequence[str], limit: int, lease_seconds: float) -> list[Claim]:
        """Claim up to ``limit`` runs of ``workflows``: free runs that can run (new, or waiting with
        an inbox item), and runs whose owner's lease has lapsed (takeovers), oldest first, skipping
        rows another replica is claiming at the same moment."""

    @abstractmethod
    def claim_one(self, handler_id: str, *, lease_seconds: float) -> Claim | None:
        """Claim this run if it is running and free or its lease lapsed (``None`` otherwise)."""

    @abstractmethod
    def create_claimed(self, row: HandlerRow, base: dict[str, Any], *, lease_seconds: float) -> Claim:
        """``create_handler`` and ``claim_one`` in one transaction: the new run is this process's
        from the start (no other replica can claim it first); ``HandlerExists`` if the id is taken."""

    @abstractmethod
    def renew(self, *, lease_seconds: float) -> list[str]:
        """Extend the lease of every run this process holds; return the ids of those it lost."""

    @abstractmethod
    def unclaim(self, handler_id: str) -> None:
        """Let go of the run (it becomes free, if this process still held it)."""

    @abstractmethod
    def held(self) -> dict[str, int]:
        """The runs this process holds, with the fencing number of each claim."""

    @abstractmethod
    def post(self, handler_id: str, *, kind: Literal["event", "cancel"], event: str | None = None,
             step: str | None = None) -> int:
        """Put an item in the run's inbox (and tell every replica); returns its id."""

    @abstractmethod
    def inbox(self, handler_id: str) -> list[InboxItem]:
        """The run's undelivered inbox items, oldest first."""

    @abstractmethod
    def ack_with_next_append(self, handler_id: str, item_ids: Sequence[int]) -> None:
        """Delete these inbox items in the same transaction as the run's next ``append`` (so an
        event is either in the journal and gone from the inbox, or still in the inbox)."""

    @abstractmethod
    def ack(self, item_ids: Sequence[int]) -> None:
        """Delete inbox items now (ones that cannot be delivered, or a cancel carried out)."""

    @abstractmethod
    def pending(self, item_id: int) -> bool:
        """Whether an inbox item is still undelivered."""

    @abstractmethod
    def queue_depth(self) -> int:
        """How many runs are free and can run (new runs not yet claimed, waiting runs with an inbox item)."""

    @abstractmethod
    def owners(self) -> dict[str, int]:
        """Runs held, by owner (every replica), counting only unlapsed leases."""

    @abstractmethod
    def listen(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``callback(channel, handler_id)`` from a background thread for every change any replica
        makes (channels: ``"stream"``, ``"status"``, ``"inbox"``, ``"queue"``); returns a function that stops."""


__all__ = ["NewRun", "RunStore", "SharedStore"]
