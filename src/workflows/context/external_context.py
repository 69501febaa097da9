"""The outside face of a running Context, as ``llama-index-utils-workflow`` looks for it.

``Context`` has three faces (before a run, outside a run, inside a step; see
``workflows.context.context``), kept in ``ctx._face``. The outside face is an
``ExternalContext``: code written for LlamaIndex Workflows checks
``isinstance(handler.ctx._face, ExternalContext)`` and reads its ``_tick_log``, the list
of what happened in the run (``workflows.runtime.types.ticks``), to draw it.

The face compares equal to the string ``"external"`` (it is a ``str``), which is how the
Context tells its faces apart; this keeps that check a plain string comparison.

The tick log is recorded only for runs started after ``workflows.runtime.types.ticks``
was imported (``llama_index.utils.workflow`` imports it): recording makes a run publish
its transitions, which runs otherwise skip when nobody listens. Without it the log is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workflows.runtime.types import TICK_LOG_KEY

if TYPE_CHECKING:
    from workflows.runtime.run import WorkflowRun


class ExternalContext(str):
    """The face of a Context given to ``workflow.run(ctx=...)`` or read from ``handler.ctx``."""

    # One per run: without a __dict__ it costs a string and a pointer.
    __slots__ = ("_run",)
    _run: WorkflowRun

    def __new__(cls, run: WorkflowRun) -> ExternalContext:
        face = super().__new__(cls, "external")
        face._run = run
        return face

    @property
    def _tick_log(self) -> list[Any]:
        """The run's ticks in order: events added from outside, then each finished step invocation."""
        return list(self._run.info.scratch.get(TICK_LOG_KEY, ()))

    def __repr__(self) -> str:
        return f"ExternalContext(run_id={self._run.run_id!r})"


__all__ = ["ExternalContext", "TICK_LOG_KEY"]
