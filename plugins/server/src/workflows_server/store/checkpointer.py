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

Under writes that never pause, a passive checkpoint never catches up with the end of the
WAL, and the file would grow for ever: once it is ``LARGE_WAL_BYTES`` long, the store's
writer checkpoints itself (TRUNCATE: the file is emptied), as SQLite would have done
sooner; the pages the thread copied already make that cheap.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

logger = logging.getLogger("workflows_server.store")

LARGE_WAL_BYTES = 4 * 1024 * 1024
"""A WAL this long is checkpointed and emptied by the writer itself (see the module docstring):
about the 1 000 pages at which SQLite's own default checkpoints."""


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

    def committed(self) -> bool:
        """A write transaction was committed (called by the store, under its write lock).

        Returns whether the writer should checkpoint now itself (``PRAGMA wal_checkpoint(TRUNCATE)``):
        the WAL is ``LARGE_WAL_BYTES`` long (looked at every ``every`` commits).
        """
        self._commits += 1
        if self._commits < self.every:
            return False
        self._commits = 0
        self._wake.set()
        try:
            return os.path.getsize(f"{self.path}-wal") >= LARGE_WAL_BYTES
        except OSError:
            return False

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            # A connection per checkpoint (opening one costs far less than the checkpoint):
            # none is left open between them, so the file's last connection to close is the
            # store's own, which removes the WAL, even if this thread is never stopped.
            try:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                try:
                    db.execute("PRAGMA busy_timeout=10000")
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                finally:
                    db.close()
                self.checkpoints += 1
            except sqlite3.Error as exc:
                # The WAL grows meanwhile; the next checkpoint tries again.
                logger.warning("checkpointing the SQLite store %s failed: %s", self.path, exc)

    def close(self) -> None:
        """Stop the thread (a checkpoint under way is finished first)."""
        self._closing = True
        self._wake.set()
        self._thread.join()


__all__ = ["LARGE_WAL_BYTES", "Checkpointer"]
