"""SDK floor: what the OpenTelemetry SDK alone costs for the spans of one traced loop step.

The loop scenario is traced once, small, to record the spans one step of the engine makes
(names, parents, attributes, links, status: the step span and the emit span for ours, the
instrumentor's step span for the reference). Then, timed, the very same spans are made
N times straight through the SDK (``start_span`` with every attribute, ``set_status``,
``end``) into the same pipeline as the traced scenarios (a ``BatchSpanProcessor`` into an
``InMemorySpanExporter``, flushed), with no engine and no instrumentation around them.

What a traced step costs beyond this floor and beyond the untraced step is the
instrumentation's own work (the handler, for ours): see the breakdown in RESULTS.md.
"""

import asyncio

from _common import emit, fail, parse_args, start_tracing, timed
from loop import Loop

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SAMPLE_STEPS = 20


async def record_one_step(engine: str, detail: str) -> list:
    """The finished spans of one step in the middle of a short traced loop, parents first."""
    tracing = start_tracing(engine, detail)
    await Loop(timeout=None).run(n=SAMPLE_STEPS)
    tracing.flush()
    spans = tracing.exporter.get_finished_spans()
    # A step span is named after the step function; its children (the emit span, for
    # ours) are the rest of what one step costs.
    steps = sorted((s for s in spans if "tick" in s.name), key=lambda s: s.start_time)
    if len(steps) < SAMPLE_STEPS // 2:
        fail(f"expected about {SAMPLE_STEPS} step spans, found {[s.name for s in spans]}")
    middle = steps[len(steps) // 2]
    return [middle] + [s for s in spans if s.parent is not None and s.parent.span_id == middle.context.span_id]


def replay(tracer, shapes: list, parent_context, n: int) -> None:
    """Make the recorded spans ``n`` times: each step's children under its step span
    (links, pointing at the recorded spans, are given as recorded: they cost the same)."""
    step, children = shapes[0], shapes[1:]
    for _ in range(n):
        span = tracer.start_span(step.name, context=parent_context, attributes=step.attributes, links=step.links)
        inner = trace.set_span_in_context(span)
        for child in children:
            made = tracer.start_span(child.name, context=inner, attributes=child.attributes, links=child.links)
            made.set_status(child.status)
            made.end()
        span.set_status(step.status)
        span.end()


async def main() -> None:
    args = parse_args(__doc__, n=5000)
    shapes = await record_one_step(args.engine, args.detail)

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1 << 22))
    tracer = provider.get_tracer("sdk-floor")
    root = tracer.start_span("run")
    parent_context = trace.set_span_in_context(root)
    replay(tracer, shapes, parent_context, 50)  # warm-up, as the scenarios do
    provider.force_flush()
    before = len(exporter.get_finished_spans())

    with timed() as elapsed:
        replay(tracer, shapes, parent_context, args.n)
        provider.force_flush()

    made = len(exporter.get_finished_spans()) - before
    if made != args.n * len(shapes):
        fail(f"made {made} spans, expected {args.n * len(shapes)}")
    emit(
        args,
        {
            "us_per_step": elapsed.wall_s / args.n * 1e6,
            "cpu_us_per_step": elapsed.cpu_s / args.n * 1e6,
            "spans_per_step": float(len(shapes)),
            "attributes_per_step": float(sum(len(s.attributes or {}) for s in shapes)),
        },
        n=args.n,
        spans=[s.name for s in shapes],
    )


if __name__ == "__main__":
    asyncio.run(main())
