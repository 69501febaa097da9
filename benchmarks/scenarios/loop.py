"""Loop: one step re-emits its own event N times. Measures the engine's cost per step."""

import asyncio

from _common import emit, fail, parse_args, start_tracing, timed

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Tick(Event):
    remaining: int


class Loop(Workflow):
    @step
    async def tick(self, ev: StartEvent | Tick) -> Tick | StopEvent:
        remaining = ev.n if isinstance(ev, StartEvent) else ev.remaining
        if remaining <= 1:
            return StopEvent(result="done")
        return Tick(remaining=remaining - 1)


async def main() -> None:
    args = parse_args(__doc__, n=5000)
    tracing = start_tracing(args.engine, args.detail) if args.traced else None
    workflow = Loop(timeout=None)
    await workflow.run(n=50)  # warm-up: validation, first-use caches
    if tracing:
        tracing.flush()
        spans_before = tracing.span_count()

    with timed() as elapsed:
        result = await workflow.run(n=args.n)
        if tracing:
            tracing.flush()

    if result != "done":
        fail(f"the loop returned {result!r}")
    metrics = {
        "us_per_step": elapsed.wall_s / args.n * 1e6,
        "total_s": elapsed.wall_s,
        "cpu_us_per_step": elapsed.cpu_s / args.n * 1e6,
    }
    if tracing:
        metrics["spans_per_step"] = (tracing.span_count() - spans_before) / args.n
    emit(args, metrics, n=args.n)


if __name__ == "__main__":
    asyncio.run(main())
