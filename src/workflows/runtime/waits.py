"""Steps parked for an outside event (``wait_for_event``) and ``collect_events`` buffers."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

from workflows.events import Event
from workflows.runtime.routing import WorkItem


class Waiter:
    """A delivery parked in ``ctx.wait_for_event`` until a matching event arrives."""

    __slots__ = ("step", "item", "waiter_id", "event_type", "requirements", "subclasses", "deadline", "timer")

    def __init__(
        self,
        *,
        step: str,
        item: WorkItem,
        waiter_id: str,
        event_type: type[Event],
        requirements: dict[str, Any] | None,
        subclasses: bool,
        deadline: float | None,
    ) -> None:
        self.step = step
        self.item = item
        self.waiter_id = waiter_id
        self.event_type = event_type
        self.requirements = requirements
        self.subclasses = subclasses
        self.deadline = deadline
        self.timer: asyncio.TimerHandle | None = None

    def matches(self, event: Event) -> bool:
        if type(event) is not self.event_type and not (self.subclasses and isinstance(event, self.event_type)):
            return False
        if self.requirements:
            return all(getattr(event, k, None) == v for k, v in self.requirements.items())
        return True


class CollectBuffer:
    """Events gathered by ``ctx.collect_events`` for one step and buffer id.

    Adding an event is O(1): we count what is still missing per type instead of
    re-scanning the expected list.
    """

    __slots__ = ("expected", "need", "got", "missing")

    def __init__(self, expected: list[type[Event]]) -> None:
        self.expected = expected
        self.need: dict[type, int] = {}
        for t in expected:
            self.need[t] = self.need.get(t, 0) + 1
        self.got: dict[type, list[Event]] = {}
        self.missing = len(expected)

    def add(self, event: Event) -> bool | None:
        """Buffer ``event``: True when the set is complete, False when kept, None when not needed."""
        t = type(event)
        have = self.got.get(t)
        if have is None:
            if t not in self.need:
                return None
            have = self.got[t] = []
        if len(have) >= self.need[t]:
            return None
        have.append(event)
        self.missing -= 1
        return self.missing == 0

    def ordered(self) -> list[Event]:
        cursors: dict[type, Iterator[Event]] = {t: iter(evs) for t, evs in self.got.items()}
        return [next(cursors[t]) for t in self.expected]

    def events(self) -> list[Event]:
        return [ev for evs in self.got.values() for ev in evs]
