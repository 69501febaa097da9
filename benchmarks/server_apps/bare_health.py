"""A server that answers ``/health`` and does nothing else: ``python bare_health.py PORT``.

The same HTTP stack as ours (Starlette on uvicorn, httptools, the loop ``workflows-server``
serves on), with no runs, no store and no thread. Probed while the load goes through our
server beside it, it shows what the machine alone adds to a request's latency under that
load (benchmarks/server_io.py, ``health``): the floor under ours.
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workflows_server.cli import run_loop


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "healthy"})


app = Starlette(routes=[Route("/health", health)])
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
run_loop(uvicorn.Server(config).serve())
