"""Runtimes: where runs execute. This engine has one, in-process and asyncio-based.

``Workflow(runtime=...)`` accepts a runtime for compatibility; the only one is
``basic_runtime`` (no durability: a run lives in its process, and survives a restart
only through ``ctx.to_dict()`` / ``Context.from_dict()``).
"""

from __future__ import annotations

import contextvars


class BasicRuntime:
    """The in-process asyncio runtime every workflow uses by default."""

    def __repr__(self) -> str:
        return "BasicRuntime()"


basic_runtime = BasicRuntime()
"""The process-wide default runtime."""

_current_runtime: contextvars.ContextVar[BasicRuntime | None] = contextvars.ContextVar(
    "workflows_current_runtime", default=None
)


def get_current_runtime() -> BasicRuntime:
    """The runtime set for the current context, else ``basic_runtime``."""
    return _current_runtime.get() or basic_runtime


__all__ = ["BasicRuntime", "basic_runtime", "get_current_runtime"]
