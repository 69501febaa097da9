"""llama-index-observability-otel and this engine in one process (run by scenario_tracing.py in a
subprocess: LlamaIndexOpenTelemetry sets the global tracer provider for the whole process).

Prints ``{"spans": [[name, span_id, parent_id, trace_id], ...]}`` for a one-step run and an agent run;
with the argument ``events``, ``{"events": [[span name, event name, {attributes}], ...]}`` for a run
whose step dispatches llama-index events before and after an LLM call.
"""

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ToolCall, scripted_llm  # noqa: E402
from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402
from llama_index.core.llms import ChatMessage  # noqa: E402
from llama_index.core.llms.structured_llm import StructuredLLM  # noqa: E402
from llama_index_instrumentation import get_dispatcher  # noqa: E402
from llama_index_instrumentation.base import BaseEvent  # noqa: E402
from llama_index.observability.otel import LlamaIndexOpenTelemetry  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from workflows import Workflow, step  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from workflows.events import StartEvent, StopEvent  # noqa: E402


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class OneStep(Workflow):
    @step
    async def step1(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="done")


class Marked(BaseEvent):
    label: str


class Answer(BaseModel):
    text: str


class Marking(Workflow):
    """Dispatches a llama-index event, calls a structured LLM (nested llama-index spans), dispatches another."""

    @step
    async def mark(self, ev: StartEvent) -> StopEvent:
        dispatcher = get_dispatcher()
        dispatcher.event(Marked(label="before"))
        llm = StructuredLLM(llm=scripted_llm(ToolCall(name="Answer", kwargs={"text": "hi"})), output_cls=Answer)
        await llm.achat([ChatMessage(role="user", content="hi")])
        dispatcher.event(Marked(label="after"))
        return StopEvent(result="marked")


async def events() -> None:
    exporter = InMemorySpanExporter()
    LlamaIndexOpenTelemetry(span_exporter=exporter, span_processor="simple").start_registering()
    assert await Marking(timeout=10).run() == "marked"
    found = [[s.name, e.name, dict(e.attributes or {})] for s in exporter.get_finished_spans() for e in s.events]
    print(json.dumps({"events": found}))


async def main() -> None:
    exporter = InMemorySpanExporter()
    LlamaIndexOpenTelemetry(span_exporter=exporter, span_processor="simple").start_registering()
    assert await OneStep(timeout=10).run() == "done"
    agent = FunctionAgent(tools=[add], llm=scripted_llm(ToolCall(name="add", kwargs={"a": 2, "b": 3}), "5"))
    assert str(await agent.run(user_msg="2 + 3?")) == "5"
    spans = [
        [s.name, s.context.span_id, s.parent.span_id if s.parent else None, s.context.trace_id]
        for s in exporter.get_finished_spans()
    ]
    print(json.dumps({"spans": spans}))


if __name__ == "__main__":
    asyncio.run(events() if sys.argv[1:] == ["events"] else main())
