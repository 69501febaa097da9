"""``WorkflowTestRunner``: run a workflow once and keep everything it streamed, for assertions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workflows.events import Event, StartEvent

if TYPE_CHECKING:
    from workflows.context.context import Context
    from workflows.workflow import Workflow


@dataclass
class WorkflowTestResult:
    """What one run streamed (``collected``, stop event included), counted by exact type, and its result."""

    collected: list[Event]
    event_types: dict[type, int]
    result: Any
    ctx: Context[Any]
    extras: dict[str, Any] = field(default_factory=dict)


class WorkflowTestRunner:
    """Runs a workflow and collects its event stream (internal events included by default)."""

    def __init__(self, workflow: Workflow) -> None:
        self._workflow = workflow

    async def run(
        self,
        start_event: StartEvent | None = None,
        ctx: Context[Any] | None = None,
        expose_internal: bool = True,
        exclude_events: list[type[Event]] | None = None,
    ) -> WorkflowTestResult:
        """Run to the end; events whose exact type is in ``exclude_events`` are left out.

        Errors of the run propagate, after the stream was drained.
        """
        handler = self._workflow.run(start_event=start_event or StartEvent(), ctx=ctx)
        excluded = set(exclude_events or ())
        collected = [
            ev async for ev in handler.stream_events(expose_internal=expose_internal) if type(ev) not in excluded
        ]
        result = await handler
        return WorkflowTestResult(
            collected=collected,
            event_types=dict(Counter(type(ev) for ev in collected)),
            result=result,
            ctx=handler.ctx,
        )


__all__ = ["WorkflowTestRunner", "WorkflowTestResult"]
