"""What a step's own code sees of the run it is in: the current step context, the wait signal.

A leaf module: ``Context`` (which steps use) and the run loop both import it, and it
imports neither of them.
"""

from __future__ import annotations

import contextvars
from typing import Any

current_step_context: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "workflows_current_step_context", default=None
)
"""The step-facing ``Context`` of the step running in this task or thread (``None`` outside steps)."""


class WaitSuspended(BaseException):
    """Raised by ``ctx.wait_for_event`` to park a step until its event arrives.

    A ``BaseException`` so that a step's own ``except Exception`` cannot swallow it.
    """
