"""``Workflow(verbose=True)``: one line per journal record a person follows a run by.

Lines go to the ``workflows.verbose`` logger when it is enabled at INFO, else to
standard output, in the order LlamaIndex Workflows prints them:

- ``[tick] add: StartEvent(topic='x')`` for each event that enters the run: the start
  event, events sent from steps (when sent) or from outside, and events steps return
  (after the returning step's ``complete with`` line);
- ``[step:worker] started from A`` and ``[step:worker] complete with B`` for each attempt,
  ``[step] enqueued (waiting for capacity)``;
- ``[result] StopEvent(result=...)`` once, when the ending ``StopEvent`` is returned
  (before the returning step's ``complete with StopEvent``), or at the end of a run that
  no ``StopEvent`` ended (``[result] cancelled`` ...).
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
    """The verbose line for ``record`` on its own, or ``None`` for records the printer leaves out."""
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


def say(line: str) -> None:
    if verbose_logger.isEnabledFor(logging.INFO):
        verbose_logger.info(line)
    else:
        print(line)


class VerbosePrinter:
    """The printer of one run: it holds each event a step returned until that step's
    ``complete with`` line is out (the journal records the event first), and says the
    result when the ending ``StopEvent`` is returned rather than when the run is closed."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], list[str]] = {}
        self._result_said = False

    def __call__(self, record: Any) -> None:
        kind = type(record)
        if kind is EventEmitted and record.source == "return" and record.step is not None:
            if isinstance(record.event, StopEvent):
                if not self._result_said:
                    self._result_said = True
                    say(f"[result] {summarize_event(record.event)}")
                return
            line = format_record(record)
            if line is not None:
                self._held.setdefault((record.step, record.invocation_id or 0), []).append(line)
            return
        if kind is RunFinished and self._result_said:
            self._flush_all()
            return
        line = format_record(record)
        if line is not None:
            say(line)
        if kind is StepFinished:
            for held in self._held.pop((record.step, record.invocation_id), ()):
                say(held)
        elif kind is RunFinished:
            self._flush_all()

    def _flush_all(self) -> None:
        held, self._held = self._held, {}
        for lines in held.values():
            for line in lines:
                say(line)
