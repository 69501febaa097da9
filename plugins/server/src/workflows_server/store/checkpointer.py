"""``Checkpointer``: a SQLite file's WAL copied into the database on a thread of its own.

By default SQLite checkpoints inside the commit that makes the WAL cross
``wal_autocheckpoint`` pages: that commit copies the pages back and syncs the file,
milliseconds during which every run waiting on that write waits too. The SQLite store
turns that off and tells the checkpointer of each commit; every ``every`` commits its
thread runs a PASSIVE checkpoint on a connection of its own, while the writes go on
(in WAL mode a checkpoint and a writer run side by side). Once a checkpoint has copied
the whole WAL, the next write starts the file over, so it stays small: a commit of a
run's hop writes 10 to 20 pages (its rows and their indexes), so 32 commits make about
the 1 000 pages at which SQLite itself would checkpoint.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger("workflows_server.store")


class Checkpointer:
    """Checkpoints the SQLite file ``path`` every ``every`` commits (see the module docstring)."""

    def __init__(self, path: str, *, every: int = 32) -> None:
        self.path = path
        self.every = every
        self.checkpoints = 0
        """Checkpoints run so far."""
        self._commits = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="workflows-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A write transaction was committed (called by the store, under its write lock)."""
        self._commits += 1
        if self._commits >= self.every:
            self._commits = 0
            self._wake.set()

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                break
            try:
                if db is None:
                    db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    db.execute("PRAGMA busy_timeout=10000")
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error as exc:
                # The WAL grows meanwhile; the next checkpoint (a fresh connection) tries again.
                logger.warning("checkpointing the SQLite store %s failed: %s", self.path, exc)
                if db is not None:
                    db.close()
                db = None
        if db is not None:
            db.close()

    def close(self) -> None:
        """Stop the thread (a checkpoint under way is finished first)."""
        self._closing = True
        self._wake.set()
        self._thread.join()


__all__ = ["Checkpointer"]
