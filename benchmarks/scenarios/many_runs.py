"""Many runs: K runs of a 10-step workflow started at once. Measures runs per second."""

import asyncio

from _common import emit, fail, parse_args, start_tracing, timed

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class E1(Event):
    pass


class E2(Event):
    pass


class E3(Event):
    pass


class E4(Event):
    pass


class E5(Event):
    pass


class E6(Event):
    pass


class E7(Event):
    pass


class E8(Event):
    pass


class E9(Event):
    pass


class Chain(Workflow):
    @step
    async def s1(self, ev: StartEvent) -> E1:
        return E1()

    @step
    async def s2(self, ev: E1) -> E2:
        return E2()

    @step
    async def s3(self, ev: E2) -> E3:
        return E3()

    @step
    async def s4(self, ev: E3) -> E4:
        return E4()

    @step
    async def s5(self, ev: E4) -> E5:
        return E5()

    @step
    async def s6(self, ev: E5) -> E6:
        return E6()

    @step
    async def s7(self, ev: E6) -> E7:
        return E7()

    @step
    async def s8(self, ev: E7) -> E8:
        return E8()

    @step
    async def s9(self, ev: E8) -> E9:
        return E9()

    @step
    async def s10(self, ev: E9) -> StopEvent:
        return StopEvent(result="done")


STEPS_PER_RUN = 10


async def main() -> None:
    args = parse_args(__doc__, k=1000)
    tracing = start_tracing(args.engine) if args.traced else None
    workflow = Chain(timeout=None)
    await workflow.run()  # warm-up
    if tracing:
        tracing.flush()
        spans_before = tracing.span_count()

    with timed() as elapsed:
        handlers = [workflow.run() for _ in range(args.k)]
        results = await asyncio.gather(*handlers)
        if tracing:
            tracing.flush()

    if results.count("done") != args.k:
        fail(f"{args.k - results.count('done')} of {args.k} runs did not finish with 'done'")
    metrics = {
        "total_s": elapsed.wall_s,
        "runs_per_s": args.k / elapsed.wall_s,
        "us_per_step": elapsed.wall_s / (args.k * STEPS_PER_RUN) * 1e6,
        "cpu_us_per_step": elapsed.cpu_s / (args.k * STEPS_PER_RUN) * 1e6,
    }
    if tracing:
        metrics["spans_per_run"] = (tracing.span_count() - spans_before) / args.k
    emit(args, metrics, k=args.k)


if __name__ == "__main__":
    asyncio.run(main())
