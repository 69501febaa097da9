"""``random_id()``: the random ids of runs, sessions and requests, as ``uuid.uuid4().hex`` makes them, cheaper.

``uuid4()`` asks the kernel for 16 random bytes each time. A server names a run, its
session and the request that started it: three such calls per run, and each releases the
GIL, so on a busy process the event loop waits for a store thread to hand it back every
time. Here the kernel's random bytes are fetched 4 KiB at a time and cut into ids: the
same source (``os.urandom``), as unpredictable, one call per 256 ids. A forked child
starts on bytes of its own, never its parent's.
"""

from __future__ import annotations

import os
import threading

_ID_BYTES = 16
_BATCH = _ID_BYTES * 256

_lock = threading.Lock()
_pool = b""
_offset = 0


def random_id() -> str:
    """32 hex characters of a random version-4 UUID (what ``uuid.uuid4().hex`` gives)."""
    global _pool, _offset
    with _lock:
        if _offset + _ID_BYTES > len(_pool):
            _pool, _offset = os.urandom(_BATCH), 0
        chunk = bytearray(_pool[_offset:_offset + _ID_BYTES])
        _offset += _ID_BYTES
    chunk[6] = (chunk[6] & 0x0F) | 0x40  # version 4
    chunk[8] = (chunk[8] & 0x3F) | 0x80  # RFC 4122 variant
    return chunk.hex()


def _forget_pool() -> None:
    global _lock, _pool, _offset
    _lock = threading.Lock()  # another thread may have held it at the fork
    _pool, _offset = b"", 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


__all__ = ["random_id"]
