"""A human-in-the-loop workflow, and the second half of the serialize/resume test.

Run as a script (``python resume_app.py CONTEXT_JSON``) it restores the saved Context in
this fresh process, traces the resumed run with an in-memory SDK, answers the pending
question and prints the finished spans as JSON lines on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workflows import Context, Workflow, step
from workflows.events import HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.instrumentation import OpenTelemetryHandler, get_dispatcher


class Greeter(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        answer = await ctx.wait_for_event(HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="name?"))
        return StopEvent(result=f"hello {answer.response}")


async def resume(saved: dict) -> str:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    get_dispatcher().add_handler(OpenTelemetryHandler(tracer_provider=provider))
    workflow = Greeter(timeout=60)
    handler = workflow.run(ctx=Context.from_dict(workflow, saved))
    handler.ctx.send_event(HumanResponseEvent(response="ann"))
    result = await handler
    for span in exporter.get_finished_spans():
        print(json.dumps({
            "name": span.name,
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
            "attributes": {k: v for k, v in (span.attributes or {}).items() if isinstance(v, (str, bool, int, float))},
        }))  # fmt: skip
    return str(result)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        print(json.dumps({"result": asyncio.run(resume(json.load(file)))}))
