"""``Lane``: threads that run a store's blocking calls and hand each outcome back to the event loop.

What ``loop.run_in_executor`` does, for less: a call is one put on a queue, and its
outcome one ``call_soon_threadsafe`` (no executor future chained to an asyncio one).
A durable step waits for one such hand-off per hop, so its cost is paid per step.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_Call = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class Lane:
    """``threads`` threads taking calls in the order they were made (one thread: one at a time)."""

    def __init__(self, name: str, threads: int = 1) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        # Daemon threads: a process that never closes its store still exits (a write under
        # way is a transaction: it is committed or not, never half written).
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn()`` on one of the lane's threads; the future gives its value or its exception."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._calls.put((fn, done, loop))
        return done

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            fn, done, loop = call
            try:
                outcome, failed = fn(), False
            except BaseException as exc:
                outcome, failed = exc, True
            try:
                loop.call_soon_threadsafe(_deliver, done, outcome, failed)
            except RuntimeError:
                pass  # the loop is closed: nobody waits for this outcome any more

    def close(self) -> None:
        """Let the threads end once the calls made so far are done (without waiting for them)."""
        for _ in self._threads:
            self._calls.put(None)

    def join(self) -> None:
        """Wait until the threads have ended (blocking: call it off the event loop)."""
        for thread in self._threads:
            thread.join()


def _deliver(done: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    if done.cancelled():
        return
    if failed:
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


__all__ = ["Lane"]
