"""Print OpenTelemetry traces as trees in the terminal: a span processor for the examples.

``ConsoleTraceHandler`` (see ``quickstart.py``) prints what the workflow engine records.
This processor sits one level lower, in the OpenTelemetry SDK: it sees every span a
tracing backend would receive, the engine's and those of other instrumentations, such
as the LLM calls that ``openinference-instrumentation-openai`` records inside a step.
``record_spans()`` sets it up; call ``render()`` once the work is done::

    provider, tree = record_spans()
    ...
    print(tree.render())
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.trace import StatusCode, format_trace_id

from workflows.instrumentation.exporters import configure_exporters_from_env


def record_spans() -> tuple[TracerProvider, TraceTree]:
    """Record spans with the OpenTelemetry SDK, keeping them in a ``TraceTree`` too.

    Exporters named in ``WORKFLOWS_EXPORTERS`` (``phoenix``, ``langfuse``, ``otlp``)
    are set up first, so the tree joins the provider they send from: the trace printed
    is then the very trace they receive.
    """
    configure_exporters_from_env()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    tree = TraceTree()
    provider.add_span_processor(tree)
    return provider, tree


# The engine records these as spans of no real length: their duration is noise.
_INSTANTS = ("emit ", "state.")


class TraceTree(SpanProcessor):
    """Keeps the spans that end, and renders each trace as an indented tree."""

    def __init__(self, width: int = 140) -> None:
        self.width = width
        self._spans: list[ReadableSpan] = []
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._spans.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    @property
    def spans(self) -> list[ReadableSpan]:
        """The spans that ended so far, in the order they ended."""
        with self._lock:
            return list(self._spans)

    def trace_ids(self) -> list[str]:
        """The traces seen so far (hex ids), in the order their first span ended."""
        return list(dict.fromkeys(format_trace_id(s.context.trace_id) for s in self.spans))

    def render(self) -> str:
        """Every trace seen so far: a header line, then its spans nested as they ran."""
        by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
        for span in self.spans:
            by_trace[span.context.trace_id].append(span)
        return "\n\n".join(self._render_trace(spans) for spans in by_trace.values())

    def _render_trace(self, spans: list[ReadableSpan]) -> str:
        ids = {s.context.span_id for s in spans}
        children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
        for span in spans:
            # A parent this process never saw (say, the run this one resumed) makes a root.
            parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
            children[parent].append(span)
        for siblings in children.values():
            siblings.sort(key=lambda s: s.start_time or 0)
        roots = children[None]
        header = f"trace {format_trace_id(spans[0].context.trace_id)}  ({len(spans)} spans"
        session = next((s.attributes.get("session.id") for s in roots if s.attributes), None)
        if session:
            header += f", session {session}"
        if any(root.parent for root in roots):
            header += ", continues a trace started elsewhere"
        lines = [header + ")"]
        for root in roots:
            lines.append(self._line(root))
            self._draw(children, root, "", lines)
        return "\n".join(lines)

    def _draw(self, children: Mapping[int | None, list[ReadableSpan]], span: ReadableSpan, prefix: str, lines: list[str]) -> None:
        below = children.get(span.context.span_id, [])
        for index, child in enumerate(below):
            last = index == len(below) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{self._line(child)}")
            self._draw(children, child, prefix + ("   " if last else "│  "), lines)

    def _line(self, span: ReadableSpan) -> str:
        attributes = dict(span.attributes or {})
        kind = attributes.get("openinference.span.kind")
        parts = [span.name]
        if kind in ("AGENT", "LLM", "TOOL", "RETRIEVER", "EMBEDDING"):
            parts.append(str(kind))
        if kind == "LLM":
            parts[-1] += f" {attributes.get('llm.model_name', '?')}"
        if not span.name.startswith(_INSTANTS) and span.start_time is not None and span.end_time is not None:
            parts.append(_duration((span.end_time - span.start_time) / 1e9))
        parts.extend(_details(span.name, kind, attributes))
        if span.status.status_code is StatusCode.ERROR:
            parts.append(f"ERROR {span.status.description or ''}".rstrip())
        return _cut("  ".join(p for p in parts if p), self.width)


def _details(name: str, kind: Any, attributes: dict[str, Any]) -> list[str]:
    """What a person scanning the tree wants to know about each kind of span."""
    if kind == "LLM":
        return _llm_details(attributes)
    if "workflow.run.status" in attributes:
        return [str(attributes["workflow.run.status"])]
    if "workflow.step.attempt" in attributes:
        details = [f"← {attributes.get('workflow.event.type', '?')}"]
        if attributes["workflow.step.attempt"] != 1:
            details.append(f"attempt {attributes['workflow.step.attempt']}")
        outcome = attributes.get("workflow.step.outcome")
        if outcome not in (None, "completed", "failed"):  # failed shows as ERROR
            details.append(str(outcome))
        return details
    if name.startswith("emit "):
        targets = attributes.get("workflow.event.targets") or ()
        return [f"→ {', '.join(targets)}"] if targets else []
    if name.startswith("state."):
        return [", ".join(attributes.get("workflow.state.keys") or ())]
    if name.startswith("wait "):
        return [str(attributes.get("workflow.wait.outcome", "still waiting"))]
    if "input.value" in attributes:  # a user span: its arguments and result
        shown = f"{_compact(attributes['input.value'])}"
        if "output.value" in attributes:
            shown += f" → {_compact(attributes['output.value'])}"
        return [shown]
    return []


def _llm_details(attributes: dict[str, Any]) -> list[str]:
    """``in: 2 messages, 35 tokens  out: 6 tokens, get_weather(city="Paris")``."""
    messages = {key.split(".")[2] for key in attributes if key.startswith("llm.input_messages.")}
    sent = f"in: {len(messages)} messages"
    received = "out:"
    if "llm.token_count.prompt" in attributes:
        sent += f", {attributes['llm.token_count.prompt']} tokens"
    if "llm.token_count.completion" in attributes:
        received += f" {attributes['llm.token_count.completion']} tokens,"
    prefix = "llm.output_messages.0.message."
    calls: list[str] = []
    while f"{prefix}tool_calls.{len(calls)}.tool_call.function.name" in attributes:
        call = f"{prefix}tool_calls.{len(calls)}.tool_call.function."
        calls.append(f"{attributes[call + 'name']}({_arguments(attributes.get(call + 'arguments', ''))})")
    if calls:
        received += " " + ", ".join(calls)
    elif f"{prefix}content" in attributes:
        received += " " + json.dumps(attributes[prefix + "content"], ensure_ascii=False)
    return [sent, received.rstrip(",")]


def _arguments(text: Any) -> str:
    """A tool call's JSON arguments as they would read in Python: ``city="Paris"``."""
    try:
        arguments = json.loads(text)
    except (TypeError, ValueError):
        return str(text)
    if not isinstance(arguments, dict):
        return _compact(text)
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())


def _compact(text: Any) -> str:
    """JSON on one line without the spaces, anything else as it is."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(text)


def _duration(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _cut(line: str, width: int) -> str:
    line = line.replace("\n", " ")
    return line if len(line) <= width else line[: width - 1] + "…"
