"""SDK floor: what the OpenTelemetry SDK alone costs for the spans of one traced loop step.

The loop scenario is traced once, small, to record the spans one step of the engine makes
(names, parents, attributes, links, status: the step span and the emit span for ours, the
instrumentor's step span for the reference). Then, timed, the very same spans are made
N times straight through the SDK (``start_span`` with every attribute, ``set_status``,
``end``) into the same pipeline as the traced scenarios (a ``BatchSpanProcessor`` into an
``InMemorySpanExporter``, flushed), with no engine and no instrumentation around them.
The attributes are given as plain dicts and each link as a new ``Link``, as an
instrumentation gives them: replaying the recorded (read-only) attribute mappings
themselves would charge the floor the SDK's slow walk over a foreign mapping, about
8 us per step of ours that no instrumentation pays.

What a traced step costs beyond this floor and beyond the untraced step is the
instrumentation's own work (the handler, for ours): see the breakdown in RESULTS.md.
"""

import asyncio
from dataclasses import dataclass

from _common import emit, fail, parse_args, start_tracing, timed
from loop import Loop

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SAMPLE_STEPS = 20


@dataclass
class Shape:
    """What the floor gives the SDK for one recorded span."""

    name: str
    attributes: dict
    links: list[tuple[trace.SpanContext, dict | None]]
    status: trace.Status


def shape_of(span) -> Shape:
    links = [(link.context, dict(link.attributes) if link.attributes else None) for link in span.links]
    return Shape(span.name, dict(span.attributes or {}), links, span.status)


async def record_one_step(engine: str, detail: str) -> list[Shape]:
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
    children = [s for s in spans if s.parent is not None and s.parent.span_id == middle.context.span_id]
    return [shape_of(span) for span in [middle, *children]]


def replay(tracer, shapes: list[Shape], parent_context, n: int) -> None:
    """Make the recorded spans ``n`` times: each step's children under its step span
    (links point at the recorded spans: they cost the same as links to new ones)."""
    step, children = shapes[0], shapes[1:]
    for _ in range(n):
        links = [trace.Link(context, attributes) for context, attributes in step.links] or None
        span = tracer.start_span(step.name, context=parent_context, attributes=step.attributes, links=links)
        inner = trace.set_span_in_context(span)
        for child in children:
            child_links = [trace.Link(context, attributes) for context, attributes in child.links] or None
            made = tracer.start_span(child.name, context=inner, attributes=child.attributes, links=child_links)
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
            "attributes_per_step": float(sum(len(s.attributes) for s in shapes)),
        },
        n=args.n,
        spans=[s.name for s in shapes],
    )


if __name__ == "__main__":
    asyncio.run(main())
