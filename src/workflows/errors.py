"""Exceptions raised by the engine.

Every class derives directly from ``Exception`` (there is no common base), so that
code written against LlamaIndex Workflows catches the same things.
"""

from __future__ import annotations


class WorkflowValidationError(Exception):
    """A step, decorator argument or workflow graph is invalid; the message says how to fix it."""


class WorkflowConfigurationError(Exception):
    """The workflow's start/stop events are missing or ambiguous (raised at construction)."""


class WorkflowTimeoutError(Exception):
    """The run's timeout fired before a step returned a ``StopEvent``."""


class WorkflowRuntimeError(Exception):
    """The engine was misused while a run was going on (bad send, stream consumed twice, ...)."""


class WorkflowCancelledByUser(Exception):
    """The run was cancelled through ``handler.cancel_run()``."""


class WorkflowDone(Exception):
    """Kept for compatibility; the engine does not raise it."""


class WorkflowStepDoesNotExistError(Exception):
    """Kept for compatibility; the engine does not raise it."""


class ContextSerdeError(Exception):
    """A serialized Context payload could not be read back, or a value in it was refused.

    The message names the path of the bad field (``workers.ask.queue[0].event``) and
    what was expected, never the value itself.
    """


class ContextResumedTwiceWarning(UserWarning):
    """The same saved context was resumed a second time in this process.

    Work that ran after the snapshot was taken (the post-answer part of a human-in-the-loop
    step, say) then runs twice. Resume each ``to_dict()`` payload once; see
    ``Context.resume_id`` and docs/security.md.
    """


class ContextStateError(Exception):
    """A Context method was used in the wrong phase (before a run, inside or outside a step)."""


__all__ = [
    "WorkflowValidationError",
    "WorkflowConfigurationError",
    "WorkflowTimeoutError",
    "WorkflowRuntimeError",
    "WorkflowCancelledByUser",
    "WorkflowDone",
    "WorkflowStepDoesNotExistError",
    "ContextSerdeError",
    "ContextResumedTwiceWarning",
    "ContextStateError",
]
