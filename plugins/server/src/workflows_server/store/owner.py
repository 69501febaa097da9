"""``FileOwner``: one server process at a time owns a SQLite store file (an OS lock on ``<file>.owner``).

Two servers continuing the runs of one file would each run every running step again
and conclude every run twice. The owner holds an exclusive ``flock`` on a file next to
the store for as long as it serves; the operating system drops the lock when the
process ends, however it ends (``kill -9`` included), so a restart never waits for a
stale owner. The lock file also says who holds it (pid, host, since), which is what a
second server's refusal names.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from workflows_server.store.records import StoreOwned, now_iso


class FileOwner:
    """The exclusive lock of one store file; ``take()`` it, ``release()`` it (or let the process end)."""

    def __init__(self, store_file: str) -> None:
        self.path = Path(f"{store_file}.owner")
        self.store_file = store_file
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def take(self) -> None:
        """Own the store file, or raise ``StoreOwned`` naming the process that does."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreOwned(
                f"cannot create the lock file {self.path} that makes this server the only owner of {self.store_file}: "
                f"{exc.strerror}; the store's folder must be writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise StoreOwned(
                f"the store {self.store_file} is in use by another server process ({holder}); a SQLite store "
                "is owned by one server at a time, so two servers never run the same steps. Stop that server "
                "first, or give this one another store (--store sqlite:///other.db); to run several replicas "
                "on the same runs, use a PostgreSQL store (--store postgresql://...), see docs/deployment.md"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None


def _read(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return "owner unknown"
    return f"pid {data.get('pid', '?')} on host {data.get('host', '?')}, since {data.get('since', '?')}"


__all__ = ["FileOwner"]
