"""Fan-out/fan-in: one step sends N events, 8 workers handle them, one step collects all N."""

import asyncio

from _common import emit, fail, parse_args, timed

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Item(Event):
    index: int


class Done(Event):
    index: int


class FanOut(Workflow):
    def __init__(self, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n = n
        # Built once: building it in each call would make the fan-in quadratic in user code.
        self.expected: list[type[Event]] = [Done] * n

    @step
    async def scatter(self, ctx: Context, ev: StartEvent) -> Item | None:
        for index in range(self.n):
            ctx.send_event(Item(index=index))
        return None

    @step(num_workers=8)
    async def work(self, ev: Item) -> Done:
        return Done(index=ev.index)

    @step
    async def gather(self, ctx: Context, ev: Done) -> StopEvent | None:
        done = ctx.collect_events(ev, self.expected)
        if done is None:
            return None
        return StopEvent(result=len(done))


async def main() -> None:
    args = parse_args(__doc__, n=2000)
    await FanOut(n=20, timeout=None).run()  # warm-up

    workflow = FanOut(n=args.n, timeout=None)
    with timed() as elapsed:
        result = await workflow.run()

    if result != args.n:
        fail(f"the fan-in collected {result!r} events, expected {args.n}")
    metrics = {
        "total_s": elapsed.wall_s,
        "us_per_event": elapsed.wall_s / args.n * 1e6,
        "cpu_us_per_event": elapsed.cpu_s / args.n * 1e6,
    }
    emit(args, metrics, n=args.n)


if __name__ == "__main__":
    asyncio.run(main())
