"""Durable runs without a server: a workflow on ``DurableRuntime`` survives its process.

What it shows:
- ``Workflow(runtime=DurableRuntime("sqlite:///..."))``: every transition of the run is
  written to a SQLite file before it happens;
- ``crash`` runs an order workflow whose second step kills the process (``os._exit``)
  after the first step finished;
- ``resume`` (a new process) continues the run from the file: the finished step does
  not run again, the interrupted one runs again with its attempt number.

Run:
    python examples/durable_script.py crash  --store /tmp/orders.db
    python examples/durable_script.py resume --store /tmp/orders.db

Needs: pip install -e . -e plugins/server
"""

from __future__ import annotations

import argparse
import asyncio
import os

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows_server import DurableRuntime


class Charged(Event):
    amount: float


class Orders(Workflow):
    @step
    async def charge(self, ctx: Context, ev: StartEvent) -> Charged:
        print(f"charging {ev.amount:.2f} for order {ev.order} (runs once)", flush=True)
        await ctx.store.set("order", ev.order)
        return Charged(amount=ev.amount)

    @step
    async def ship(self, ctx: Context, ev: Charged) -> StopEvent:
        attempt = ctx.retry_info().retry_number
        print(f"shipping, attempt {attempt + 1}", flush=True)
        if os.environ.get("CRASH_WHILE_SHIPPING") == "1" and attempt == 0:
            os._exit(9)  # the process dies mid-step, as with kill -9
        return StopEvent(result=f"order {await ctx.store.get('order')} charged {ev.amount:.2f} and shipped")


async def crash(store: str) -> None:
    os.environ["CRASH_WHILE_SHIPPING"] = "1"
    workflow = Orders(runtime=DurableRuntime(store), timeout=None)
    await workflow.run(order="A-17", amount=42.5, run_id="order-A-17")


async def resume(store: str) -> None:
    runtime = DurableRuntime(store)
    for row in await runtime.unfinished():
        print(f"continuing run {row.handler_id} ({row.workflow_name})", flush=True)
        handler = await runtime.continue_run(Orders(timeout=None), row.handler_id)
        if handler is not None:
            print(await handler, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["crash", "resume"])
    parser.add_argument("--store", default="/tmp/otel-workflows-orders.db", help="the SQLite file of the runs")
    args = parser.parse_args()
    store = f"sqlite:///{os.path.abspath(args.store)}"
    asyncio.run(crash(store) if args.command == "crash" else resume(store))


if __name__ == "__main__":
    main()
