"""Steps parked for an outside event (``wait_for_event``), ``collect_events`` buffers and join buffers."""

from __future__ import annotations

import asyncio
from collections import deque
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


JOIN_BUFFER = "<join>"
"""The buffer id of a multi-slot join step's own buffer (``ctx.collect_events`` ids are the user's)."""


class JoinBuffer:
    """The events a multi-slot join step has received, queued per slot type.

    The step fires each time every slot has one: the oldest of each is handed out and
    later arrivals wait for the next set (``A, A, B`` fires once, with the first ``A``;
    the second ``A`` waits for another ``B``). ``short`` counts the types still lacking
    events, so an arrival costs O(1) plus the hand-out.
    """

    __slots__ = ("expected", "subclasses", "need", "queues", "short")

    def __init__(self, expected: list[type[Event]], subclasses: bool = False) -> None:
        self.expected = expected
        self.subclasses = subclasses
        self.need: dict[type, int] = {}
        for t in expected:
            self.need[t] = self.need.get(t, 0) + 1
        self.queues: dict[type, deque[Event]] = {t: deque() for t in self.need}
        self.short = len(self.need)

    def _slot_type(self, event: Event) -> type | None:
        t = type(event)
        if t in self.need:
            return t
        if self.subclasses:
            return next((s for s in self.need if isinstance(event, s)), None)
        return None

    def add(self, event: Event) -> list[Event] | None:
        """Queue ``event``; the events of a complete set (in slot order) when it completes one."""
        t = self._slot_type(event)
        if t is None:
            return None
        queue = self.queues[t]
        queue.append(event)
        if len(queue) == self.need[t]:
            self.short -= 1
        if self.short:
            return None
        handed = [self.queues[s].popleft() for s in self.expected]
        for s, n in self.need.items():
            if len(self.queues[s]) < n:
                self.short += 1
        return handed

    def events(self) -> list[Event]:
        return [ev for queue in self.queues.values() for ev in queue]
