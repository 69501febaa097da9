"""Run stores: the ``RunStore`` interface, its records, and ``open_store(url)``.

A store is chosen by URL scheme; ``STORE_FACTORIES`` maps each scheme to the callable
that opens it, so another engine's store is one module and one entry beside SQLite's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from workflows_server.settings import DEFAULT_STORE
from workflows_server.store.base import NewRun, RunStore, SharedStore
from workflows_server.store.index import RunIndex
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
    STATUSES,
    Snapshot,
    Status,
    StoreError,
    StoreOwned,
    StreamEvent,
    TERMINAL,
    now_iso,
)
from workflows_server.store.sqlite import SqliteStore


def _postgres(url: str) -> RunStore:
    # Imported on use: psycopg is an optional dependency (the "postgres" extra).
    from workflows_server.store.postgres import PostgresStore

    return PostgresStore(url)


STORE_FACTORIES: dict[str, Callable[[str], RunStore]] = {
    "sqlite": SqliteStore,
    "postgresql": _postgres,
    "postgres": _postgres,
}
"""URL scheme -> the callable that opens a store from the whole URL."""


def open_store(url: str | Path | None = None) -> RunStore:
    """The store a URL names: ``sqlite:///path/runs.db`` (or a bare file path), ``postgresql://user@host/db``
    (shared by replicas; needs the ``postgres`` extra); ``None``: the default file.

    An unknown scheme raises ``StoreError`` listing the schemes this installation knows.
    """
    text = DEFAULT_STORE if url is None else str(url)
    scheme, sep, _ = text.partition("://")
    if not sep:
        return SqliteStore(text)
    factory = STORE_FACTORIES.get(scheme.split("+", 1)[0])
    if factory is None:
        raise StoreError(
            f"no store for {scheme}:// URLs ({text!r}); this installation knows: "
            f"{', '.join(s + '://' for s in sorted(STORE_FACTORIES))}"
        )
    return factory(text)


__all__ = [
    "Append",
    "Claim",
    "FencedOut",
    "HandlerExists",
    "InboxItem",
    "SharedStore",
    "HandlerRow",
    "HandlerUpdate",
    "JournalEntry",
    "NewRun",
    "NewStreamEvent",
    "RunIndex",
    "RunStore",
    "STATUSES",
    "STORE_FACTORIES",
    "Snapshot",
    "SqliteStore",
    "Status",
    "StoreError",
    "StoreOwned",
    "StreamEvent",
    "TERMINAL",
    "now_iso",
    "open_store",
]
