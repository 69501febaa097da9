"""What a run needs from its workflow and its Context, passed in so the runtime imports neither.

``Workflow`` builds one ``RunConfig`` and shares it between its runs until its steps
or settings change (it is frozen: a run never changes it); ``Context`` satisfies
``RunOwner``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Protocol

from workflows.runtime.routing import RouteTable

if TYPE_CHECKING:
    from workflows.context.state_store import InMemoryStateStore
    from workflows.runtime.routing import WorkItem
    from workflows.runtime.run import WorkflowRun

StepContextFactory = Callable[["RunOwner", "WorkflowRun", str, "WorkItem", int], Any]
"""``(owner, run, step, item, invocation_id) -> the Context a step invocation receives``."""


class RunOwner(Protocol):
    """The outside view of a run (a ``Context``): its store, its session, its snapshot."""

    @property
    def session_id(self) -> str: ...

    @property
    def store(self) -> InMemoryStateStore[Any]: ...

    def _run_ended(self, run: WorkflowRun) -> None: ...


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything about a workflow that its runs read, fixed for as long as its steps are.

    ``error_handlers`` maps a step to the ``@catch_error`` step that recovers it;
    ``run_semaphore`` gives the ``num_concurrent_runs`` limit of the running loop (or
    ``None``); ``runtime`` is the runtime plugin, asked for each run's journal writer.
    """

    workflow: Any
    trace_name: str
    workflow_class: str
    is_agent: bool
    timeout: float | None
    verbose: bool
    routes: RouteTable
    error_handlers: Mapping[str, str]
    resolve_resources: Callable[[list[Any]], Awaitable[dict[str, Any]]]
    run_semaphore: Callable[[], asyncio.Semaphore | None]
    make_step_context: StepContextFactory
    runtime: Any
