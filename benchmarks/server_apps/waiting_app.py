"""Runs that wait for a human, served on SQLite, with a probe of the process (benchmarks/server_waiting.py).

``tracemalloc`` counts what Python allocates (the runs held in memory, the server's
objects) and not what SQLite allocates for its own pages: "memory beyond the store".
"""

import asyncio
import gc
import os
import resource
import tracemalloc

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workflows import Context, Workflow, step
from workflows.events import HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows_server import WorkflowServer

tracemalloc.start()


class Approval(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> InputRequiredEvent:
        await ctx.store.set("item", ev.get("item", ""))
        return InputRequiredEvent(prefix=f"approve {ev.get('item', '')}?")

    @step
    async def decide(self, ctx: Context, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=f"{await ctx.store.get('item')}:{ev.response}")


async def probe(request: Request) -> JSONResponse:
    """The process's Python memory (after a collection, unless ``?collect=false``), RSS, CPU and tasks."""
    if request.query_params.get("collect") != "false":
        gc.collect()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(f"/proc/{os.getpid()}/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return JSONResponse({
        "python_bytes": tracemalloc.get_traced_memory()[0],
        "rss_bytes": rss_pages * os.sysconf("SC_PAGE_SIZE"),
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "tasks": len(asyncio.all_tasks()),
    })


class ProbedServer(WorkflowServer):
    """The server with ``/bench/probe`` added once its app is built (after the CLI configured it)."""

    @property
    def app(self):  # type: ignore[override]
        app = super().app
        if not any(getattr(route, "path", None) == "/bench/probe" for route in app.router.routes):
            app.router.routes.append(Route("/bench/probe", probe))
        return app


server = ProbedServer()
server.add_workflow("approval", Approval(timeout=None))
