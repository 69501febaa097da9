"""A workflow's step as the run loop sees it: the callable and its compiled config."""

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
