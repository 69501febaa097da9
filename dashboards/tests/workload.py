"""Runs real workflows in a loop and exposes their metrics for Prometheus to scrape.

Started by the dashboard tests as a child process, the way a production worker would
be: the metrics endpoint comes from the environment alone (``WORKFLOWS_EXPORTERS=prometheus``
with ``OTEL_EXPORTER_PROMETHEUS_HOST`` / ``_PORT``). Two workflows give every dashboard
panel something to show: ``OrderPipeline`` always completes and streams progress;
``FlakyEnrichment`` retries a step on every run and fails one run in three. Runs until
SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import signal

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed


class OrderValidated(Event):
    order_id: int


class Progress(Event):
    message: str


class OrderPipeline(Workflow):
    @step
    async def check(self, ev: StartEvent) -> OrderValidated:
        return OrderValidated(order_id=ev.order_id)

    @step
    async def charge(self, ctx: Context, ev: OrderValidated) -> StopEvent:
        ctx.write_event_to_stream(Progress(message=f"charged {ev.order_id}"))
        return StopEvent(result=ev.order_id)


class Fetched(Event):
    attempt: int


class FlakyEnrichment(Workflow):
    @step(retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3)))
    async def fetch(self, ctx: Context, ev: StartEvent) -> Fetched:
        attempt = await ctx.store.get("attempt", default=0) + 1
        await ctx.store.set("attempt", attempt)
        if attempt == 1:
            raise ConnectionError("upstream busy")  # every run retries once
        return Fetched(attempt=attempt)

    @step
    async def enrich(self, ev: Fetched) -> StopEvent:
        if self.fail:
            raise ValueError("no enrichment for this record")
        return StopEvent(result="enriched")

    def __init__(self, fail: bool) -> None:
        super().__init__(timeout=10)
        self.fail = fail


async def main() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    for number in itertools.count():
        if stop.is_set():
            return
        await OrderPipeline(timeout=10).run(order_id=number)
        try:
            await FlakyEnrichment(fail=number % 3 == 0).run()
        except ValueError:
            pass
        # Pace the loop so a 2-core machine keeps room for Prometheus and the tests.
        await asyncio.sleep(0.02)


if __name__ == "__main__":
    asyncio.run(main())
