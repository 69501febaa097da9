"""Carry a run's session and ids onto spans that other libraries open inside it.

Langfuse filters and aggregates observations by session and metadata one observation
at a time, so an LLM call made inside a step (a span of the OpenAI instrumentation,
which knows nothing of workflows) should carry the run's session too. When such a span
starts, its parent is still open and readable: this processor copies the session id
and the workflow's name and run id from it, as ``langfuse.*`` attributes only.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from workflows_langfuse.mapping import METADATA, SESSION

# (attribute set on the child, where the parent has it: an engine span, or a span that
# got it from this processor in turn)
_CARRIED = (
    (SESSION, ("workflow.session_id", SESSION)),
    (f"{METADATA}.workflow_name", ("workflow.name", f"{METADATA}.workflow_name")),
    (f"{METADATA}.run_id", ("workflow.run_id", f"{METADATA}.run_id")),
)


class RunContextProcessor(SpanProcessor):
    """Stamps a workflow run's session, name and run id on every span started under it."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        own = span.attributes or {}
        if "workflow.run_id" in own:  # the engine's own span: the mapping handles it
            return
        parent = trace.get_current_span(parent_context)
        inherited = getattr(parent, "attributes", None)  # only SDK spans expose attributes
        if not inherited:
            return
        for key, sources in _CARRIED:
            value = next((inherited[s] for s in sources if inherited.get(s)), None)
            if value is not None and key not in own:
                span.set_attribute(key, str(value))

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
