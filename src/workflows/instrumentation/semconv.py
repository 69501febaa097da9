"""The conventions the spans follow besides ``workflow.*``: OpenInference's span kinds and
OpenTelemetry's GenAI attributes, each name written here once.

OpenInference's ``openinference.span.kind`` is what Phoenix reads (and Langfuse, as a
fallback); OpenTelemetry's GenAI semantic conventions (``gen_ai.*``, still at
"Development" stability) are what Datadog, Honeycomb, Grafana, Langfuse and Phoenix read
to tell agents, tools and conversations apart. The names below are those of
``opentelemetry-semantic-conventions`` (``opentelemetry.semconv._incubating``), written
out because the core depends on ``opentelemetry-api`` only.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, Literal

KIND = "openinference.span.kind"
AGENT_NAME_OI = "agent.name"  # OpenInference's agent name

OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"

INVOKE_AGENT = "invoke_agent"
INVOKE_WORKFLOW = "invoke_workflow"
EXECUTE_TOOL = "execute_tool"

TOOL_CALL_ID_FIELDS = ("tool_call_id", "tool_id", "call_id")
"""The fields of a tool's input read for ``gen_ai.tool.call.id``, in this order: OpenAI's
``tool_call_id``, LlamaIndex's ``ToolCall.tool_id``, and ``call_id``."""
TOOL_NAME_FIELD = "tool_name"
"""The field of a tool step's input event that names the tool it runs (LlamaIndex's
``ToolCall.tool_name``); without it the tool is the step itself."""

SpanKind = Literal[
    "CHAIN", "TOOL", "RETRIEVER", "LLM", "EMBEDDING", "AGENT", "RERANKER",
    "GUARDRAIL", "EVALUATOR", "PROMPT", "DECISION", "UNKNOWN",
]  # fmt: skip
"""What kind of work a step or a ``@dispatcher.span`` function is, for OpenInference
(``openinference.span.kind``): Phoenix picks the span's icon and filters by it, Langfuse
its observation type. ``AGENT`` and ``TOOL`` also set the GenAI operation
(``invoke_agent``, ``execute_tool``)."""
SPAN_KINDS: tuple[str, ...] = typing.get_args(SpanKind)


def check_span_kind(kind: Any, decorator: str) -> SpanKind | None:
    """``kind`` upper-cased, or ``None``; raises ``ValueError`` naming ``decorator`` (such
    as ``@step``) when it is not an OpenInference span kind."""
    if kind is None:
        return None
    normalized = kind.upper() if isinstance(kind, str) else kind
    if normalized not in SPAN_KINDS:
        raise ValueError(
            f"{decorator}(kind={kind!r}) is not an OpenInference span kind: use one of "
            f"{', '.join(SPAN_KINDS)} (for example kind='TOOL' for a tool call, kind='RETRIEVER' for a "
            "search), or leave it out for CHAIN"
        )
    return typing.cast(SpanKind, normalized)


def run_attributes(workflow_name: str, session_id: str, is_agent: bool) -> dict[str, Any]:
    """The GenAI attributes of a run span: an agent's invocation (with OpenInference's
    ``agent.name`` too), or a workflow's."""
    attributes: dict[str, Any] = {
        OPERATION: INVOKE_AGENT if is_agent else INVOKE_WORKFLOW,
        AGENT_NAME: workflow_name,
        CONVERSATION_ID: session_id,
    }
    if is_agent:
        attributes[AGENT_NAME_OI] = workflow_name
    else:
        attributes[WORKFLOW_NAME] = workflow_name
    return attributes


def run_span_name(workflow_name: str, is_agent: bool, latest: bool) -> str:
    """The run span's name: ``{Workflow}.run``, or the conventions' under their opt-in."""
    if latest:
        return span_name(INVOKE_AGENT if is_agent else INVOKE_WORKFLOW, workflow_name)
    return f"{workflow_name}.run"


def span_name(operation: str, subject: str) -> str:
    """A span's name under the conventions: ``{operation} {agent, tool or workflow name}``."""
    return f"{operation} {subject}"


def operation_attributes(
    operation: str, subject: str, *, call_id: str | None = None, session_id: str | None = None
) -> dict[str, Any]:
    """The GenAI attributes of a tool's execution (``subject`` is the tool, ``call_id`` the
    call's id when known) or of an agent's invocation (``subject`` is the agent, in the
    conversation ``session_id``)."""
    if operation == EXECUTE_TOOL:
        attributes: dict[str, Any] = {OPERATION: operation, TOOL_NAME: subject}
        if call_id is not None:
            attributes[TOOL_CALL_ID] = call_id
        return attributes
    attributes = {OPERATION: operation, AGENT_NAME: subject, AGENT_NAME_OI: subject}
    if session_id is not None:
        attributes[CONVERSATION_ID] = session_id
    return attributes


def operation_of(kind: str | None) -> str | None:
    """The GenAI operation of a span of OpenInference ``kind``, when it has one."""
    if kind == "TOOL":
        return EXECUTE_TOOL
    if kind == "AGENT":
        return INVOKE_AGENT
    return None


def field_of(value: Any, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that ``value`` (an event, a model, a mapping or any object)
    carries as a non-empty string or integer, as text; ``None`` when it has none."""
    for name in names:
        try:
            found = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
        except Exception:  # a property that raises, a mapping that refuses the key: not there
            continue
        if isinstance(found, str) and found:
            return found
        if isinstance(found, int) and not isinstance(found, bool):
            return str(found)
    return None


def tool_call_id(arguments: Mapping[str, Any]) -> str | None:
    """The tool call id among a function's arguments: an argument named like one of
    ``TOOL_CALL_ID_FIELDS``, else such a field of one of the arguments."""
    direct = field_of(arguments, TOOL_CALL_ID_FIELDS)
    if direct is not None:
        return direct
    for value in arguments.values():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            found = field_of(value, TOOL_CALL_ID_FIELDS)
            if found is not None:
                return found
    return None


def exception_type(error: BaseException) -> str:
    """``error``'s class as ``error.type`` and ``exception.type`` name it: the qualified
    name, with its module unless it is a builtin."""
    kind = type(error)
    if kind.__module__ in ("builtins", "__main__"):
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"
