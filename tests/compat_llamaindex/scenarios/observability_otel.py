"""llama-index-observability-otel and this engine in one process (run by scenario_tracing.py in a
subprocess: LlamaIndexOpenTelemetry sets the global tracer provider for the whole process).

Prints ``{"spans": [[name, span_id, parent_id, trace_id], ...]}`` for a one-step run and an agent run.
"""

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ToolCall, scripted_llm  # noqa: E402
from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402
from llama_index.observability.otel import LlamaIndexOpenTelemetry  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from workflows import Workflow, step  # noqa: E402
from workflows.events import StartEvent, StopEvent  # noqa: E402


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class OneStep(Workflow):
    @step
    async def step1(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="done")


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
    asyncio.run(main())
