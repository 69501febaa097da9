"""``Tasks``: the background tasks and timers of the server's runs, with one owner that ends them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

logger = logging.getLogger("workflows_server")


class Tasks:
    """Tasks and timers started for the runs; ``close()`` cancels every one and waits for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.closed = False

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``work`` in a task owned here (its failure is logged, never lost)."""
        if self.closed:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def later(self, delay: float, make: Callable[[], Coroutine[Any, Any, Any]], name: str) -> None:
        """Spawn ``make()`` after ``delay`` seconds (never, if closed before)."""

        def fire() -> None:
            self._timers.discard(timer)
            self.spawn(make(), name)

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["Tasks"]
