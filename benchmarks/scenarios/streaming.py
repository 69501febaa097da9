"""Streaming: a step writes N events to the stream and a consumer reads them all."""

import asyncio
import time

from _common import emit, fail, parse_args

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

    started = time.perf_counter()
    received = await consume(workflow, args.n)
    elapsed = time.perf_counter() - started

    if received != args.n:
        fail(f"the consumer read {received} of {args.n} streamed events")
    emit(args, {"us_per_event": elapsed / args.n * 1e6, "total_s": elapsed}, n=args.n)


if __name__ == "__main__":
    asyncio.run(main())
