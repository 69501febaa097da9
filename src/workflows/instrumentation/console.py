"""A console handler: prints each finished run as an indented tree, with no tracing backend.

::

    MyWorkflow.run  3.2 ms  completed  (run 5c0e9a1d, session 0b7f3e22)
    ├─ emit StartEvent → start  {"input_msg": "Hello, world!"}
    ├─ start  1.1 ms  ← StartEvent
    │  ├─ state.edit  /num_runs = 1
    │  └─ emit MyEvent → process  {"msg": ["Hello, world!"]}
    ├─ process  0.3 ms  ← MyEvent
    │  └─ emit StopEvent  {"result": "Processed 1 times, data length: 13"}
    └─ result  Processed 1 times, data length: 13

Child workflows run from a step are printed inside that step. Payloads follow the same
rules as span attributes (masking, redaction, content capture switch) and are cut to
one line.
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import threading
import time
from typing import Any, Callable, TextIO

from workflows.instrumentation.events import (
    EventEmitted,
    InstrumentationEvent,
    RunFinished,
    RunInfo,
    RunStarted,
    SpanEntered,
    SpanExited,
    StateChanged,
    StepFinished,
    StepStarted,
    UserEvent,
    WaitEnded,
    WaitStarted,
)
from workflows.instrumentation.payloads import JSON, PayloadPolicy, Redactor

_RED, _GREEN, _YELLOW, _DIM, _RESET = "\033[31m", "\033[32m", "\033[33m", "\033[2m", "\033[0m"


class _Node:
    """One line of the tree, with the lines nested under it. ``run`` is set on the nodes
    that can be current (runs, steps, user spans); ``token`` while one is current."""

    __slots__ = ("label", "run", "is_run", "started", "ended", "outcome", "note", "children", "token")

    def __init__(self, label: str, run: RunInfo | None = None, timed: bool = True, is_run: bool = False) -> None:
        self.label = label
        self.run = run
        self.is_run = is_run
        self.started = time.perf_counter() if timed else None
        self.ended: float | None = None
        self.outcome = ""  # how it ended: completed, failed, retrying, ...
        self.note = ""  # what follows the duration and outcome
        self.children: list[_Node] = []
        self.token: contextvars.Token[_Node | None] | None = None

    def finish(self, outcome: str, note: str = "") -> None:
        self.ended = time.perf_counter()
        self.outcome = outcome
        if note:
            self.note = f"{self.note}  {note}" if self.note else note


class _RunTree:
    __slots__ = ("root", "nested", "steps", "waits", "user_spans")

    def __init__(self, root: _Node, nested: bool) -> None:
        self.root = root
        self.nested = nested  # printed as part of the parent run's tree
        self.steps: dict[tuple[str, int], _Node] = {}
        self.waits: dict[str, _Node] = {}
        self.user_spans: dict[int, _Node] = {}

    def parent_of(self, step: str | None, invocation_id: int | None) -> _Node:
        if step is not None and invocation_id is not None:
            node = self.steps.get((step, invocation_id))
            if node is not None:
                return node
        return self.root


class ConsoleTraceHandler:
    """Prints every run it follows, once finished, as a tree on ``file``.

    ``width`` caps each line's payload preview (characters); ``color`` defaults to
    whether ``file`` is a terminal (and ``NO_COLOR`` is unset). ``capture_content`` and
    ``redact`` work as for ``OpenTelemetryHandler``; ``show_payloads=False`` prints the
    structure only.
    """

    def __init__(
        self,
        file: TextIO | None = None,
        *,
        width: int = 100,
        color: bool | None = None,
        show_payloads: bool = True,
        capture_content: bool | None = None,
        redact: Redactor | None = None,
    ) -> None:
        self.file = file
        self.width = width
        self.show_payloads = show_payloads
        self.payloads = PayloadPolicy(capture_content, 4096, redact)
        self._color = color
        self._lock = threading.Lock()
        self._current: contextvars.ContextVar[_Node | None] = contextvars.ContextVar(
            f"console_node_{id(self)}", default=None
        )
        self._handlers: dict[type, Callable[[Any, _RunTree], None]] = {
            StepStarted: self._step_started,
            StepFinished: self._step_finished,
            EventEmitted: self._event_emitted,
            StateChanged: self._state_changed,
            WaitStarted: self._wait_started,
            WaitEnded: self._wait_ended,
            RunFinished: self._run_finished,
            SpanEntered: self._span_entered,
            SpanExited: self._span_exited,
            UserEvent: self._user_event,
        }

    def handle(self, event: InstrumentationEvent) -> bool | None:
        """Collect ``event`` into its run's tree; follows every run."""
        run = event.run
        if run is None:
            return None
        if type(event) is RunStarted:
            self._run_started(event, run)
            return True
        tree = run.scratch.get(self)
        handler = self._handlers.get(type(event))
        if tree is not None and handler is not None:
            handler(event, tree)
        return None

    # -- collecting ------------------------------------------------------------------
    def _run_started(self, event: RunStarted, run: RunInfo) -> None:
        root = _Node(f"{run.workflow_name}.run", run, is_run=True)
        ids = f"(run {run.run_id[:8]}, session {run.session_id[:8]}{', resumed' if event.resumed else ''})"
        root.note = ids
        caller = self._current.get()  # a step of a run this handler follows: nest there
        nested = caller is not None and caller.run is not None and self in caller.run.scratch
        if caller is not None and nested:
            caller.children.append(root)
        run.scratch[self] = _RunTree(root, nested)

    def _run_finished(self, event: RunFinished, tree: _RunTree) -> None:
        del event.run.scratch[self]  # type: ignore[union-attr]
        root = tree.root
        for node in [*tree.steps.values(), *tree.waits.values(), *tree.user_spans.values()]:
            node.finish("cancelled", "(still running when the run ended)")
        if event.status == "completed":
            root.children.append(self._leaf("result", event.result))
            root.finish("completed")
        else:
            error = f"{type(event.error).__name__}: {event.error}" if event.error is not None else ""
            root.finish(event.status.replace("_", " "), error)
        if not tree.nested:
            self._print(root)

    def _step_started(self, event: StepStarted, tree: _RunTree) -> None:
        label = event.step if event.attempt == 1 else f"{event.step} (attempt {event.attempt})"
        node = _Node(label, tree.root.run)
        if event.event is not None:
            node.note = f"← {type(event.event).__name__}"
        tree.root.children.append(node)
        tree.steps[(event.step, event.invocation_id)] = node
        node.token = self._current.set(node)

    def _step_finished(self, event: StepFinished, tree: _RunTree) -> None:
        node = tree.steps.pop((event.step, event.invocation_id), None)
        if node is None:
            return
        self._leave(node)
        note = ""
        if event.error is not None:
            note = f"{type(event.error).__name__}: {event.error}"
        if event.outcome == "retrying" and event.retry_delay is not None:
            note = f"{note}  (retrying in {event.retry_delay:g} s)"
        node.finish(event.outcome, note.strip())

    def _event_emitted(self, event: EventEmitted, tree: _RunTree) -> None:
        type_name = type(event.event).__name__ if event.event is not None else "Event"
        label = f"emit {type_name}"
        if event.targets:
            label += f" → {', '.join(event.targets)}"
        if event.source in ("send_event", "stream", "external"):
            label += f" ({event.source.replace('_', ' ')})"
        tree.parent_of(event.step, event.invocation_id).children.append(self._leaf(label, event.event))

    def _state_changed(self, event: StateChanged, tree: _RunTree) -> None:
        rendered = self.payloads.render_state_change(event.path, event.before, event.after)
        node = _Node(f"state.{event.op}", timed=False)
        if self.show_payloads:
            try:
                node.note = _describe_patch(json.loads(rendered.text))
            except ValueError:  # cut: show the raw text
                node.note = rendered.text
            node.note = self._cut(node.note)
        tree.parent_of(event.step, event.invocation_id).children.append(node)

    def _wait_started(self, event: WaitStarted, tree: _RunTree) -> None:
        type_name = event.event_type.__name__ if event.event_type is not None else "Event"
        node = _Node(f"wait {type_name}")
        tree.parent_of(event.step, event.invocation_id).children.append(node)
        tree.waits[event.waiter_id] = node

    def _wait_ended(self, event: WaitEnded, tree: _RunTree) -> None:
        node = tree.waits.pop(event.waiter_id, None)
        if node is not None:
            node.finish(event.outcome.replace("_", " "))

    def _span_entered(self, event: SpanEntered, tree: _RunTree) -> None:
        node = _Node(event.name, tree.root.run)
        current = self._current.get()
        parent = current if current is not None and current.run is tree.root.run else tree.root
        parent.children.append(node)
        tree.user_spans[event.span_id] = node
        node.token = self._current.set(node)

    def _span_exited(self, event: SpanExited, tree: _RunTree) -> None:
        node = tree.user_spans.pop(event.span_id, None)
        if node is None:
            return
        self._leave(node)
        if event.error is not None:
            node.finish("failed", f"{type(event.error).__name__}: {event.error}")
        else:
            node.finish("completed")

    def _leave(self, node: _Node) -> None:
        """Make the node that was current before ``node`` current again (same task)."""
        if node.token is not None:
            self._current.reset(node.token)
            node.token = None

    def _user_event(self, event: UserEvent, tree: _RunTree) -> None:
        current = self._current.get()
        parent = current if current is not None and current.run is tree.root.run else tree.root
        node = _Node(f"• {event.name}", timed=False)
        if event.attributes and self.show_payloads:
            node.note = self._cut(
                "  ".join(f"{k}={self._preview(v, k)}" for k, v in event.attributes.items())
            )
        parent.children.append(node)

    def _leaf(self, label: str, payload: Any) -> _Node:
        node = _Node(label, timed=False)
        if self.show_payloads:
            node.note = self._cut(self._preview(payload))
        return node

    def _preview(self, value: Any, key: str | None = None) -> str:
        if key is not None:
            value = self.payloads.prepare(value, key)
        rendered = self.payloads.render(value)
        if rendered.mime_type != JSON:
            return rendered.text
        # spans get compact JSON; a person reads it better with spaces after , and :
        return json.dumps(json.loads(rendered.text), ensure_ascii=False)

    def _cut(self, text: str) -> str:
        text = text.replace("\n", "⏎ ")
        return text if len(text) <= self.width else text[: self.width - 1] + "…"

    # -- printing --------------------------------------------------------------------
    def _print(self, root: _Node) -> None:
        file = self.file if self.file is not None else sys.stderr
        color = self._color
        if color is None:
            color = bool(getattr(file, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
        lines = [self._line(root, color)]
        _draw(root.children, "", lines, lambda node: self._line(node, color))
        with self._lock:
            file.write("\n".join(lines) + "\n")
            file.flush()

    @staticmethod
    def _line(node: _Node, color: bool) -> str:
        parts = [node.label]
        if node.started is not None and node.ended is not None:
            parts.append(_duration(node.ended - node.started))
        # a completed step says nothing more than its duration; a run always says how it ended
        if node.outcome and (node.is_run or node.outcome != "completed"):
            outcome = node.outcome
            if color:
                tint = _GREEN if outcome in ("completed", "received") else _YELLOW
                if outcome in ("failed", "timed out", "retrying"):
                    tint = _RED
                outcome = f"{tint}{outcome}{_RESET}"
            parts.append(outcome)
        if node.note:
            parts.append(f"{_DIM}{node.note}{_RESET}" if color else node.note)
        return "  ".join(parts)


def _draw(children: list[_Node], prefix: str, lines: list[str], line: Callable[[_Node], str]) -> None:
    for index, child in enumerate(children):
        last = index == len(children) - 1
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{line(child)}")
        _draw(child.children, prefix + ("   " if last else "│  "), lines, line)


def _duration(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _describe_patch(ops: list[dict[str, Any]]) -> str:
    """``/num_runs = 1; /tmp removed`` for a JSON Patch (values dropped when capture is off)."""
    parts = []
    for op in ops:
        path = op.get("path") or "/"
        if op.get("op") == "remove":
            parts.append(f"{path} removed")
        elif "value" in op:
            parts.append(f"{path} = {json.dumps(op['value'], ensure_ascii=False)}")
        else:
            parts.append(f"{path} changed")
    return "; ".join(parts) if parts else "(no change)"
