"""``Workflow(verbose=True)``: one line per journal record a person follows a run by.

Lines go to the ``workflows.verbose`` logger when it is enabled at INFO, else to
standard output: ``[tick] add: StartEvent(topic='x')`` for each event that enters the
run (the start event, events sent from steps or from outside, events steps return; a
returned ``StopEvent`` is the ``[result]`` line instead), as LlamaIndex Workflows prints them,
``[step:worker] started from A`` and ``[step:worker] complete with B`` for each attempt,
``[step] enqueued (waiting for capacity)``, ``[result] StopEvent(result=...)`` at the end.
"""

from __future__ import annotations

import logging
from typing import Any

from workflows.events import StopEvent
from workflows.runtime.journal import EventEmitted, RunFinished, StepFinished, StepQueued, StepStarted
from workflows.summary import summarize_event

verbose_logger = logging.getLogger("workflows.verbose")

_ENTERING = frozenset({"start", "external", "send_event", "return"})


def format_record(record: Any) -> str | None:
    """The verbose line for ``record``, or ``None`` for records the printer leaves out."""
    kind = type(record)
    if kind is EventEmitted:
        if record.source in _ENTERING and record.event is not None and not isinstance(record.event, StopEvent):
            return f"[tick] add: {summarize_event(record.event)}"
        return None
    if kind is StepStarted:
        return f"[{record.step}:{record.worker}] started from {type(record.event).__name__}"
    if kind is StepFinished:
        if record.outcome == "completed":
            if record.output is None:
                return f"[{record.step}:{record.worker}] complete with no result"
            return f"[{record.step}:{record.worker}] complete with {type(record.output).__name__}"
        if record.outcome in ("failed", "retrying"):
            return f"[{record.step}:{record.worker}] {record.outcome}: {type(record.error).__name__}"
        return None
    if kind is StepQueued:
        return f"[{record.step}] enqueued (waiting for capacity)"
    if kind is RunFinished:
        if record.stop_event is not None:
            return f"[result] {summarize_event(record.stop_event)}"
        return f"[result] {record.status}"
    return None


def say_record(record: Any) -> None:
    line = format_record(record)
    if line is None:
        return
    if verbose_logger.isEnabledFor(logging.INFO):
        verbose_logger.info(line)
    else:
        print(line)
