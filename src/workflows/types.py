"""Type variables used in signatures that return a run's result."""

from __future__ import annotations

from typing import Any, TypeVar, Union

from workflows.events import StopEvent

StopEventT = TypeVar("StopEventT", bound=StopEvent)
"""A workflow's StopEvent class (a subclass is returned as the run's result as is)."""

RunResultT = Union[StopEventT, Any]
"""What ``await handler`` gives: the ``result`` of a plain StopEvent, or the subclass instance."""

__all__ = ["StopEventT", "RunResultT"]
