"""LLM calls of each step, captured from the spans the step's LLM client produced.

``LlmCapture`` is an OpenTelemetry SDK span processor. The engine makes each step's
span current while the step runs, so an instrumented client's LLM span (OpenInference:
``openinference.span.kind = LLM``; or OpenTelemetry GenAI: ``gen_ai.usage.*``) is a
descendant of that step span. The processor remembers which step attempt of which run
every open span belongs to (the engine's step span carries ``workflow.run_id``,
``workflow.step.name`` and ``workflow.step.attempt``; other spans inherit from their
parent), and when an LLM span ends it stores its model, token counts, cost, input and
output as an ``LlmCall`` of the run.

Attribute names, from the OpenInference semantic conventions: ``llm.model_name``,
``llm.token_count.prompt`` / ``.completion`` / ``.total``, ``llm.cost.total`` (USD),
``input.value``, ``output.value``, ``llm.output_messages.{i}.message.content``; and
from OpenTelemetry's GenAI conventions: ``gen_ai.request.model`` /
``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens``.

Capture never breaks a run: every failure is logged and dropped.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from opentelemetry import trace

from workflows_server.store.queries import LlmCall

try:  # the SDK is there whenever a provider to attach to is (the server itself needs only the API)
    from opentelemetry.sdk.trace import SpanProcessor as _SpanProcessor
except ImportError:  # pragma: no cover - without the SDK nothing is ever attached
    _SpanProcessor = object  # type: ignore[assignment,misc]

logger = logging.getLogger("workflows_server.debugger")

TEXT_LIMIT = 4000
"""Characters of an LLM call's input and output kept in the store."""

Owner = tuple[str, str, int]
"""``(run_id, step, attempt)`` of the step attempt a span belongs to."""


def _iso(nanos: int | None) -> str:
    moment = datetime.fromtimestamp((nanos or 0) / 1e9, tz=timezone.utc)
    return moment.isoformat()


def _int(attributes: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def is_llm_span(attributes: Mapping[str, Any]) -> bool:
    kind = attributes.get("openinference.span.kind")
    if kind is not None:
        return str(kind).upper() == "LLM"
    return any(name in attributes for name in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"))


def output_text(attributes: Mapping[str, Any]) -> str | None:
    """What the LLM answered: its output messages' text (tool calls named), else ``output.value``."""
    parts: list[str] = []
    index = 0
    while f"llm.output_messages.{index}.message.role" in attributes or f"llm.output_messages.{index}.message.content" in attributes:
        prefix = f"llm.output_messages.{index}.message"
        content = attributes.get(f"{prefix}.content")
        if content:
            parts.append(str(content))
        call = 0
        while f"{prefix}.tool_calls.{call}.tool_call.function.name" in attributes:
            name = attributes[f"{prefix}.tool_calls.{call}.tool_call.function.name"]
            arguments = attributes.get(f"{prefix}.tool_calls.{call}.tool_call.function.arguments", "")
            parts.append(f"{name}({arguments})")
            call += 1
        index += 1
    if parts:
        return _text("\n".join(parts))
    return _text(attributes.get("output.value"))


def input_text(attributes: Mapping[str, Any]) -> str | None:
    """The last input message's text, else ``input.value``."""
    index, last = 0, None
    while f"llm.input_messages.{index}.message.role" in attributes:
        content = attributes.get(f"llm.input_messages.{index}.message.content")
        if content:
            last = f"{attributes[f'llm.input_messages.{index}.message.role']}: {content}"
        index += 1
    return _text(last) if last is not None else _text(attributes.get("input.value"))


class LlmCapture(_SpanProcessor):
    """The span processor; see the module docstring.

    ``save`` keeps a finished call (it must not block: the server queues it on the
    store's worker); ``handler_of(run_id)`` names the handler of a live run (``None`` if
    it is not one of this server's); ``prices`` maps a model to US dollars per million input and
    output tokens, used when a span carries no ``llm.cost.total``.
    """

    def __init__(
        self,
        save: Callable[[LlmCall], None],
        handler_of: Callable[[str], str | None],
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.save = save
        self.handler_of = handler_of
        self.prices = dict(prices or {})
        self._owners: dict[int, Owner] = {}
        self._lock = threading.Lock()

    # -- SpanProcessor
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        try:
            attributes = span.attributes or {}
            context = span.get_span_context()
            owner: Owner | None = None
            run_id, step = attributes.get("workflow.run_id"), attributes.get("workflow.step.name")
            if run_id and step and "workflow.step.attempt" in attributes:
                owner = (str(run_id), str(step), int(attributes["workflow.step.attempt"]))
            elif span.parent is not None:
                with self._lock:
                    owner = self._owners.get(span.parent.span_id)
            if owner is not None:
                with self._lock:
                    self._owners[context.span_id] = owner
        except Exception:
            logger.exception("the debugger's LLM capture failed on a span's start")

    def on_end(self, span: Any) -> None:
        try:
            context = span.get_span_context()
            with self._lock:
                owner = self._owners.pop(context.span_id, None)
            if owner is None:
                return
            attributes = span.attributes or {}
            if not is_llm_span(attributes):
                return
            run_id, step, attempt = owner
            handler_id = self.handler_of(run_id)
            if handler_id is None:
                return
            self.save(self.call_of(span, attributes, handler_id, owner))
        except Exception:
            logger.exception("the debugger's LLM capture failed on a span's end")

    def shutdown(self) -> None:
        with self._lock:
            self._owners.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- reading an LLM span
    def call_of(self, span: Any, attributes: Mapping[str, Any], handler_id: str, owner: Owner) -> LlmCall:
        run_id, step, attempt = owner
        prompt = _int(attributes, "llm.token_count.prompt", "gen_ai.usage.input_tokens") or 0
        completion = _int(attributes, "llm.token_count.completion", "gen_ai.usage.output_tokens") or 0
        total = _int(attributes, "llm.token_count.total") or prompt + completion
        model = attributes.get("llm.model_name") or attributes.get("gen_ai.response.model") or attributes.get(
            "gen_ai.request.model"
        )
        cost: float | None = None
        given = attributes.get("llm.cost.total")
        if isinstance(given, (int, float)):
            cost = float(given)
        elif model is not None and str(model) in self.prices:
            per_input, per_output = self.prices[str(model)]
            cost = round((prompt * per_input + completion * per_output) / 1_000_000, 8)
        status = getattr(span, "status", None)
        error = None
        if status is not None and getattr(status.status_code, "name", "") == "ERROR":
            error = _text(status.description or "error")
        context = span.get_span_context()
        return LlmCall(
            handler_id=handler_id, run_id=run_id, step=step, attempt=attempt,
            span_id=format(context.span_id, "016x"), trace_id=format(context.trace_id, "032x"),
            started_at=_iso(span.start_time), ended_at=_iso(span.end_time), model=str(model) if model else None,
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=total, cost=cost,
            input_text=input_text(attributes), output_text=output_text(attributes), error=error,
        )


def attach(capture: LlmCapture) -> bool:
    """Add ``capture`` to the global tracer provider if it is an SDK one; False when none is configured yet."""
    provider = trace.get_tracer_provider()
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return False
    add(capture)
    return True


__all__ = ["LlmCapture", "TEXT_LIMIT", "attach", "input_text", "is_llm_span", "output_text"]
