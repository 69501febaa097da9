"""Runtimes: where runs execute, and where their journal goes.

``Workflow(runtime=...)`` takes a ``Runtime``; without one, runs use the runtime set for
the current context, else ``basic_runtime``. Every runtime runs the steps in-process on
asyncio; what a runtime decides is what happens to each run's journal (see
``workflows.runtime.journal``): ``BasicRuntime`` keeps nothing (a run survives its
process only through ``ctx.to_dict()`` / ``Context.from_dict()``), while a durable
runtime (such as the workflow server's store) writes every record before the run acts
on it and continues the run elsewhere from what it wrote
(``Context.from_journal``).
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from workflows.runtime.journal import JournalWriter, RunInfo

if TYPE_CHECKING:
    from workflows.context.context import Context


class Runtime:
    """Base of runtimes. Subclass it and override ``open_journal`` to persist runs.

    ``open_journal`` is called as each run starts, on the run's event loop, with the
    run's identity and its ``Context`` (the outside face: ``ctx.to_dict()`` takes a
    snapshot to write beside the journal). The writer it returns receives every record
    of the run, in order, before the run acts on it; ``None`` journals nothing.
    """

    def open_journal(self, run: RunInfo, ctx: Context[Any]) -> JournalWriter | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BasicRuntime(Runtime):
    """The in-process asyncio runtime every workflow uses by default; it keeps no journal."""


basic_runtime = BasicRuntime()
"""The process-wide default runtime."""

_current_runtime: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "workflows_current_runtime", default=None
)


def get_current_runtime() -> Runtime:
    """The runtime set for the current context, else ``basic_runtime``."""
    return _current_runtime.get() or basic_runtime


__all__ = ["BasicRuntime", "Runtime", "basic_runtime", "get_current_runtime"]
