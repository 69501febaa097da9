"""Waiting: K runs each wait for a human response. Memory and CPU while they wait, then all answered."""

import asyncio
import time

from _common import emit, fail, parse_args, settled_rss_bytes

from workflows import Workflow, step
from workflows.events import (
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
)


class AskHuman(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="approve?")

    @step
    async def answer(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)


async def until_prompted(handler) -> None:
    """Read the run's stream until it asks for input (the stream stays open for later)."""
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            return
    raise RuntimeError("the run ended without asking for input")


async def answer_all(handlers) -> list:
    for handler in handlers:
        handler.ctx.send_event(HumanResponseEvent(response="yes"))
    return await asyncio.gather(*handlers)


async def main() -> None:
    args = parse_args(__doc__, k=10000)
    workflow = AskHuman(timeout=None)
    warm_up = workflow.run()  # warm-up: one full ask/answer cycle
    await until_prompted(warm_up)
    await answer_all([warm_up])

    rss_before = settled_rss_bytes()
    started = time.perf_counter()
    handlers = [workflow.run() for _ in range(args.k)]
    await asyncio.gather(*(until_prompted(h) for h in handlers))
    all_waiting_s = time.perf_counter() - started
    await asyncio.sleep(0.3)  # let each run finish routing its prompt and go idle
    rss_waiting = settled_rss_bytes()

    cpu_started = time.process_time()
    await asyncio.sleep(args.idle)
    idle_cpu_s = time.process_time() - cpu_started

    started = time.perf_counter()
    results = await answer_all(handlers)
    answer_s = time.perf_counter() - started

    if results.count("yes") != args.k:
        fail(f"{args.k - results.count('yes')} of {args.k} runs did not finish with the answer")
    metrics = {
        "kb_per_waiting_run": (rss_waiting - rss_before) / args.k / 1024,
        "idle_cpu_ms_per_s": idle_cpu_s / args.idle * 1000,
        "start_all_s": all_waiting_s,
        "answer_all_s": answer_s,
    }
    emit(args, metrics, k=args.k, idle_window_s=args.idle)


if __name__ == "__main__":
    asyncio.run(main())
