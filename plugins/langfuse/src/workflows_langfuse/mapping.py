"""Translate the engine's span attributes into the ones Langfuse reads.

The engine's spans follow the trace contract (``workflow.*`` plus OpenInference
attributes). Langfuse understands part of that by itself, but not what makes a workflow
readable there: which span is the trace, which observation type a step, an emitted event
or a state change is, a retried attempt that is not a failure, an LLM call's model, usage
and messages. This module computes, for one finished span, the ``langfuse.*``
attributes to add. It never removes or changes the span's own attributes, so the
``workflow.*`` ones reach Langfuse too (under the observation's metadata).

Pure functions over a span's attributes, parent, status and events: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode

from workflows.instrumentation.semconv import EXECUTE_TOOL, INVOKE_AGENT, KIND, OPERATION, TOOL_CALL_ID
APP_ROOT = "langfuse.internal.is_app_root"  # set by the Langfuse SDK's processor when a span starts

TYPE = "langfuse.observation.type"
INPUT = "langfuse.observation.input"
OUTPUT = "langfuse.observation.output"
LEVEL = "langfuse.observation.level"
STATUS_MESSAGE = "langfuse.observation.status_message"
METADATA = "langfuse.observation.metadata"
MODEL = "langfuse.observation.model.name"
MODEL_PARAMETERS = "langfuse.observation.model.parameters"
USAGE = "langfuse.observation.usage_details"
SESSION = "langfuse.session.id"
TRACE_NAME = "langfuse.trace.name"
TRACE_INPUT = "langfuse.trace.input"
TRACE_OUTPUT = "langfuse.trace.output"
TRACE_METADATA = "langfuse.trace.metadata"
ENVIRONMENT = "langfuse.environment"
RELEASE = "langfuse.release"

# OpenInference span kinds and the Langfuse observation type each one is.
_TYPE_OF_KIND = {
    "CHAIN": "chain",
    "AGENT": "agent",
    "TOOL": "tool",
    "RETRIEVER": "retriever",
    "LLM": "generation",
    "EMBEDDING": "embedding",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator",
}
# GenAI operations (``gen_ai.operation.name``) of spans that carry no OpenInference kind.
_TYPE_OF_OPERATION = {INVOKE_AGENT: "agent", "create_agent": "agent", EXECUTE_TOOL: "tool"}
_GENERATION_OPERATIONS = {"chat", "completion", "text_completion", "generate_content", "generate"}


def span_role(attributes: Mapping[str, Any]) -> str | None:
    """What a span is, from the attributes only its kind carries.

    ``run``, ``step``, ``emit``, ``state``, ``wait`` (for outside input, or a retry's
    back-off), ``workflow`` (another span the
    engine made inside a run, such as a ``@dispatcher.span`` function), ``llm``
    (an LLM call from any instrumentation), or ``None`` for anything else.
    """
    if "workflow.run.status" in attributes or "workflow.resumed" in attributes:
        return "run"
    if "workflow.step.attempt" in attributes:
        return "step"
    if "workflow.backoff.attempt" in attributes:
        return "wait"
    if "workflow.event.source" in attributes:
        return "emit"
    if "workflow.state.diff" in attributes or "workflow.state.keys" in attributes:
        return "state"
    if "workflow.wait.id" in attributes:
        return "wait"
    if "workflow.run_id" in attributes:
        return "workflow"
    if _is_llm_call(attributes):
        return "llm"
    return None


def langfuse_attributes(
    span: ReadableSpan, *, environment: str | None = None, release: str | None = None
) -> dict[str, Any]:
    """The ``langfuse.*`` attributes to add to ``span`` before it is sent to Langfuse."""
    attributes: Mapping[str, Any] = span.attributes or {}
    role = span_role(attributes)
    added: dict[str, Any] = {}
    if role == "llm":
        added.update(_generation(attributes))
    elif role is not None:
        added.update(_workflow_observation(role, attributes))
        if role == "run" and (span.parent is None or attributes.get(APP_ROOT) is True):
            added.update(_trace_of_run(attributes))
    added.update(_level(span, attributes))
    if environment:
        added[ENVIRONMENT] = environment
    if release:
        added[RELEASE] = release
    return added


# -- the engine's spans ------------------------------------------------------------------


def _workflow_observation(role: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    added: dict[str, Any] = {TYPE: _observation_type(role, attributes)}
    session = attributes.get("workflow.session_id")
    if session:
        added[SESSION] = str(session)
    # Input and output are not copied: Langfuse reads the engine's ``input.value`` and
    # ``output.value`` (a state change's diff is its ``output.value``) by itself, and
    # payloads of up to 16 KiB are worth sending once.
    # Top-level metadata keys are the ones Langfuse can filter observations on.
    for key, source in (
        ("workflow_name", "workflow.name"),
        ("run_id", "workflow.run_id"),
        ("step", "workflow.step.name"),
        ("attempt", "workflow.step.attempt"),
        ("outcome", "workflow.step.outcome"),
        ("event_type", "workflow.event.type"),
        ("event_source", "workflow.event.source"),
        ("run_status", "workflow.run.status"),
        ("wait_outcome", "workflow.wait.outcome"),
        ("tool_call_id", TOOL_CALL_ID),
    ):
        value = attributes.get(source)
        if value is not None and value != "":
            added[f"{METADATA}.{key}"] = str(value)
    for key, source in (("event_targets", "workflow.event.targets"), ("state_keys", "workflow.state.keys")):
        values = attributes.get(source)
        if values:
            added[f"{METADATA}.{key}"] = ", ".join(str(v) for v in values)
    return added


def _observation_type(role: str, attributes: Mapping[str, Any]) -> str:
    """Emitted events and state changes are instants (``event``); a step is a link of
    the workflow's chain (``chain``, unless it is marked as a tool, agent, ...), which
    also makes Langfuse draw the steps as a graph; the run is a ``chain`` or, for an
    agent workflow, an ``agent``; waits are plain durations (``span``), and so are
    ``@dispatcher.span`` functions unless declared a tool, an agent, ...

    The OpenInference kind decides; a span without one is typed by its GenAI operation
    (``invoke_agent`` an agent, ``execute_tool`` a tool), as Langfuse itself would."""
    if role in ("emit", "state"):
        return "event"
    if role == "wait":
        return "span"
    kind = str(attributes.get(KIND, "")).upper()
    default = "span" if role == "workflow" else "chain"
    if not kind:
        return _TYPE_OF_OPERATION.get(str(attributes.get(OPERATION, "")), default)
    if kind == "CHAIN":
        return default
    return _TYPE_OF_KIND.get(kind, default)


def _trace_of_run(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Trace-level fields, set by the run that is the trace's root (a child workflow
    run, nested under a step, leaves the trace to its parent run). Input and output are
    explicit because Langfuse takes them from the root observation only when that span
    has no parent, and a run may be nested under an unexported span of the caller."""
    added: dict[str, Any] = {}
    _copy(attributes, "workflow.name", added, TRACE_NAME)
    _copy(attributes, "input.value", added, TRACE_INPUT)
    _copy(attributes, "output.value", added, TRACE_OUTPUT)
    for key, source in (("workflow_name", "workflow.name"), ("run_id", "workflow.run_id")):
        _copy(attributes, source, added, f"{TRACE_METADATA}.{key}")
    return added


def _level(span: ReadableSpan, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Failures are ERROR with their message; what went wrong but was handled (an
    attempt that will be retried, a run or step cut short by a cancel) is WARNING.

    A retried attempt is WARNING whatever its status: the engine leaves it UNSET (so a run
    that recovers does not look failed), older versions marked it ERROR."""
    status = span.status
    description = status.description or _exception_message(span.events)
    if attributes.get("workflow.step.outcome") == "retrying":
        delay = attributes.get("workflow.step.retry_delay")
        retry = f"retried in {delay:g}s" if isinstance(delay, (int, float)) else "retried"
        message = f"attempt {attributes.get('workflow.step.attempt', '?')} failed, {retry}: {description}"
        return {LEVEL: "WARNING", STATUS_MESSAGE: message, **_exception_metadata(span.events)}
    if status.status_code is StatusCode.ERROR:
        return {LEVEL: "ERROR", STATUS_MESSAGE: description or "failed", **_exception_metadata(span.events)}
    if attributes.get("workflow.run.status") == "cancelled":
        return {LEVEL: "WARNING", STATUS_MESSAGE: "the run was cancelled"}
    if attributes.get("workflow.step.outcome") == "cancelled" or attributes.get("workflow.wait.outcome") == "cancelled":
        return {LEVEL: "WARNING", STATUS_MESSAGE: "interrupted: the run ended first"}
    return {}


def _exception_event(events: Sequence[Event]) -> Event | None:
    return next((event for event in events if event.name == "exception"), None)


def _exception_message(events: Sequence[Event]) -> str:
    event = _exception_event(events)
    if event is None or not event.attributes:
        return ""
    kind = event.attributes.get("exception.type", "")
    message = event.attributes.get("exception.message", "")
    return f"{kind}: {message}" if kind and message else str(kind or message)


def _exception_metadata(events: Sequence[Event]) -> dict[str, Any]:
    """Langfuse ignores span events, so the exception's type and stack go to metadata."""
    event = _exception_event(events)
    if event is None or not event.attributes:
        return {}
    added: dict[str, Any] = {}
    for key in ("type", "message", "stacktrace"):
        value = event.attributes.get(f"exception.{key}")
        if value:
            added[f"{METADATA}.exception_{key}"] = str(value)
    return added


# -- LLM calls ---------------------------------------------------------------------------


def _is_llm_call(attributes: Mapping[str, Any]) -> bool:
    kind = str(attributes.get(KIND, "")).upper()
    if kind:
        return kind == "LLM"
    return attributes.get(OPERATION) in _GENERATION_OPERATIONS


def _generation(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A generation with its model, parameters, token usage and chat messages, from the
    OpenInference (``llm.*``) or OpenTelemetry GenAI (``gen_ai.*``) attributes."""
    added: dict[str, Any] = {TYPE: "generation"}
    model = _first(attributes, "llm.model_name", "gen_ai.response.model", "gen_ai.request.model")
    if model:
        added[MODEL] = str(model)
    _copy(attributes, "llm.invocation_parameters", added, MODEL_PARAMETERS)
    usage = _usage(attributes)
    if usage:
        added[USAGE] = json.dumps(usage)
    messages = _messages(attributes, "llm.input_messages")
    if messages:
        tools = _tools(attributes)
        added[INPUT] = json.dumps({"tools": tools, "messages": messages} if tools else messages)
    replies = _messages(attributes, "llm.output_messages")
    if replies:
        added[OUTPUT] = json.dumps(replies[0] if len(replies) == 1 else replies)
    return added


def _usage(attributes: Mapping[str, Any]) -> dict[str, int]:
    usage: dict[str, int] = {}
    for name, keys in (
        ("input", ("llm.token_count.prompt", "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
        ("output", ("llm.token_count.completion", "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
        ("total", ("llm.token_count.total",)),
    ):
        value = _first(attributes, *keys)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            usage[name] = int(value)
    if "total" not in usage and "input" in usage and "output" in usage:
        usage["total"] = usage["input"] + usage["output"]
    return usage


_MESSAGE_KEY = re.compile(r"^(\d+)\.message\.(.+)$")
_TOOL_CALL_KEY = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(.+)$")


def _messages(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Rebuild chat messages from OpenInference's flattened keys, in the shape the
    OpenAI API (and Langfuse's chat view) uses: role, content, tool_calls, tool_call_id."""
    messages: dict[int, dict[str, Any]] = {}
    calls: dict[int, dict[int, dict[str, Any]]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix + "."):
            continue
        match = _MESSAGE_KEY.match(key[len(prefix) + 1 :])
        if match is None:
            continue
        index, field = int(match.group(1)), match.group(2)
        message = messages.setdefault(index, {})
        call_match = _TOOL_CALL_KEY.match(field)
        if call_match is not None:
            call = calls.setdefault(index, {}).setdefault(int(call_match.group(1)), {"type": "function"})
            call_field = call_match.group(2)
            if call_field.startswith("function."):
                call.setdefault("function", {})[call_field[len("function.") :]] = value
            else:
                call[call_field] = value
        elif field in ("role", "content", "tool_call_id", "name"):
            message[field] = value
    for index, by_position in calls.items():
        messages[index]["tool_calls"] = [by_position[i] for i in sorted(by_position)]
    return [messages[i] for i in sorted(messages)]


def _tools(attributes: Mapping[str, Any]) -> list[Any]:
    tools = []
    index = 0
    while (schema := attributes.get(f"llm.tools.{index}.tool.json_schema")) is not None:
        try:
            tools.append(json.loads(schema))
        except (TypeError, ValueError):
            tools.append(schema)
        index += 1
    return tools


# -- helpers -----------------------------------------------------------------------------


def _first(attributes: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def _copy(source: Mapping[str, Any], key: str, target: dict[str, Any], as_key: str) -> None:
    value = source.get(key)
    if value is not None and value != "":
        target[as_key] = value
