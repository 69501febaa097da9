"""``Hub``: in-process wake-ups for whoever waits on a run (streams, ``POST /run``, answers)."""

from __future__ import annotations

import asyncio


def ended_key(handler_id: str) -> str:
    """The key woken when the run's status becomes final (its stream's key wakes on every event)."""
    return f"ended:{handler_id}"


class Hub:
    """Whoever waits on a run's key is woken when the run writes (or another replica says it did)."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[None]] = {}

    def future(self, key: str) -> asyncio.Future[None]:
        """A future set at the next ``notify(key)``; take it before reading, then await it."""
        found = self._futures.get(key)
        if found is None or found.done():
            found = self._futures[key] = asyncio.get_running_loop().create_future()
        return found

    def notify(self, key: str) -> None:
        found = self._futures.pop(key, None)
        if found is not None and not found.done():
            found.set_result(None)

    def notify_all(self) -> None:
        """Wake every waiter (notifications may have been missed: each reads the store again)."""
        for key in list(self._futures):
            self.notify(key)


    def notify_ended(self, handler_id: str) -> None:
        """The run's status changed (to final, or it was deleted): wake its stream's and its end's waiters."""
        self.notify(handler_id)
        self.notify(ended_key(handler_id))


__all__ = ["Hub", "ended_key"]
