"""The compiled view of a workflow's steps: what the run loop dispatches on.

Built once per workflow instance (and rebuilt when a step is added to the class), so
routing an event at run time is one dict look-up of its exact type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from workflows.decorators import StepConfig


@dataclass(eq=False)
class StepSpec:
    """One step as the runtime sees it: the callable and its compiled config."""

    name: str
    func: Callable[..., Any]
    config: StepConfig

    @property
    def num_workers(self) -> int:
        return self.config.num_workers

    def accepts(self, event_type: type) -> bool:
        if self.config.accept_event_subclasses:
            return any(issubclass(event_type, t) for t in self.config.accepted_events)
        return event_type in self.config.accepted_events


class RouteTable:
    """Event type -> the steps that accept it, memoised per concrete type.

    Catch-error handlers are left out: they only receive the ``StepFailedEvent`` the
    runtime sends them directly, never a broadcast one.
    """

    def __init__(self, steps: dict[str, StepSpec]) -> None:
        self.steps = steps
        self._routable = [s for s in steps.values() if s.config.role == "step"]
        self._cache: dict[type, tuple[StepSpec, ...]] = {}

    def targets(self, event_type: type) -> tuple[StepSpec, ...]:
        targets = self._cache.get(event_type)
        if targets is None:
            targets = self._cache[event_type] = tuple(s for s in self._routable if s.accepts(event_type))
        return targets
