"""Streaming: a step writes N events to the stream and a consumer reads them all."""

import asyncio

from _common import emit, fail, parse_args, timed

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Chunk(Event):
    index: int


class Producer(Workflow):
    @step
    async def produce(self, ctx: Context, ev: StartEvent) -> StopEvent:
        for index in range(ev.n):
            ctx.write_event_to_stream(Chunk(index=index))
        return StopEvent(result=ev.n)


async def consume(workflow: Producer, n: int) -> int:
    handler = workflow.run(n=n)
    received = 0
    async for event in handler.stream_events():
        if isinstance(event, Chunk):
            received += 1
    await handler
    return received


async def main() -> None:
    args = parse_args(__doc__, n=10000)
    workflow = Producer(timeout=None)
    await consume(workflow, 50)  # warm-up

    with timed() as elapsed:
        received = await consume(workflow, args.n)

    if received != args.n:
        fail(f"the consumer read {received} of {args.n} streamed events")
    metrics = {
        "us_per_event": elapsed.wall_s / args.n * 1e6,
        "total_s": elapsed.wall_s,
        "cpu_us_per_event": elapsed.cpu_s / args.n * 1e6,
    }
    emit(args, metrics, n=args.n)


if __name__ == "__main__":
    asyncio.run(main())
