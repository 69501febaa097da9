"""A short program that traces many runs to a backend that is down (see dead_backend.py).

Usage: ``dead_backend_app.py PLUGIN PORT RUNS [OPTIONS]``, PLUGIN one of ``phoenix``,
``langfuse``, ``otlp``; OPTIONS ``simple`` for Phoenix's ``batch=False``. Prints
``RESULTS <count of correct results>`` and returns: what happens next (the exporters
sending what is left, at interpreter exit) is what the caller measures.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent


class Drafted(Event):
    text: str


class Short(Workflow):
    @step
    async def draft(self, ctx: Context, ev: StartEvent) -> Drafted:
        await ctx.store.set("topic", ev.topic)
        return Drafted(text=f"about {ev.topic}")

    @step
    async def finish(self, ev: Drafted) -> StopEvent:
        return StopEvent(result=ev.text)


def register(plugin: str, port: int, options: str) -> None:
    url = f"http://127.0.0.1:{port}"
    if plugin == "phoenix":
        import workflows_phoenix

        workflows_phoenix.register("dead-backend", endpoint=url, batch=options != "simple")
    elif plugin == "langfuse":
        import workflows_langfuse

        workflows_langfuse.register(public_key="pk-lf-dead", secret_key="sk-lf-dead", host=url)
    elif plugin == "otlp":
        import workflows_otlp

        workflows_otlp.register(endpoint=url, service_name="dead-backend")
    else:
        raise SystemExit(f"unknown plugin {plugin!r}")


async def main(runs: int) -> int:
    results = [await Short(timeout=30).run(topic=f"t{i}") for i in range(runs)]
    return sum(result == f"about t{i}" for i, result in enumerate(results))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    plugin, port, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    register(plugin, port, sys.argv[4] if len(sys.argv) > 4 else "")
    print(f"RESULTS {asyncio.run(main(runs))}", flush=True)
