"""What one step invocation produced, as listed in a ``TickStepResult``.

``WaitingForEvent`` is the exception ``ctx.wait_for_event`` raises to park a step
(``llama-index-core``'s agents let it through their tool-error handling); it is a
``BaseException``, so a step's ``except Exception`` does not swallow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from workflows.events import Event
from workflows.runtime.scope import WaitSuspended

R = TypeVar("R")


@dataclass(kw_only=True)
class StepWorkerResult(Generic[R]):
    """An event the step emitted (returned, or sent with ``ctx.send_event``)."""

    result: R


@dataclass(kw_only=True)
class StepWorkerFailed:
    """The step raised ``exception`` (after its retries, if any)."""

    exception: BaseException


@dataclass(kw_only=True)
class StepWorkerWaiter:
    """The step suspended itself in ``ctx.wait_for_event`` and will run again when the event arrives."""


@dataclass(kw_only=True)
class AddCollectedEvent:
    """An event the step buffered with ``ctx.collect_events`` (not recorded by this engine's tick log)."""

    event: Event


StepFunctionResult = StepWorkerResult[Any] | StepWorkerFailed | StepWorkerWaiter | AddCollectedEvent


WaitingForEvent = WaitSuspended
"""What the reference names the signal of a step parked in ``wait_for_event``."""


__all__ = [
    "AddCollectedEvent",
    "StepFunctionResult",
    "StepWorkerFailed",
    "StepWorkerResult",
    "StepWorkerWaiter",
    "WaitingForEvent",  # noqa: F822 -- provided by __getattr__
]
