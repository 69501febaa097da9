"""``workflows-server APP.py``: load a file, find its ``WorkflowServer``, serve it.

``workflows-server view RUN.json [MORE.json ...]``: open runs exported from a debugger
(its run page's **Export** button) read-only in the same debugger, with no store and no
workflow code (``workflows_server.debugger.exported``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Coroutine, Sequence

from workflows_server.server import WorkflowServer
from workflows_server.settings import SETTINGS, EventLoop, ServerSettings

_FLAGS = ("host", "port", "store", "token")


def load_app(spec: str) -> WorkflowServer:
    """The ``WorkflowServer`` of ``path/to/app.py`` (or ``path/to/app.py:name`` to pick one of several).

    The file is imported as a module named after it (its folder first on ``sys.path``),
    so the event classes it defines have stable import paths: runs kept in the store
    name them, and a restarted server must find them again.
    """
    path_text, _, attribute = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    path = Path(path_text)
    if not path.is_file():
        raise SystemExit(f"workflows-server: {path_text!r} is not a file (expected APP.py defining a WorkflowServer)")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    module: ModuleType
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path.resolve()):
        module = sys.modules[name]
    else:
        loader_spec = importlib.util.spec_from_file_location(name, path.resolve())
        assert loader_spec is not None and loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, WorkflowServer):
            raise SystemExit(f"workflows-server: {path_text} has no WorkflowServer named {attribute!r}")
        return found
    servers = {key: value for key, value in vars(module).items() if isinstance(value, WorkflowServer)}
    if len(servers) != 1:
        what = "no WorkflowServer instance" if not servers else f"several WorkflowServer instances ({', '.join(servers)})"
        raise SystemExit(f"workflows-server: {path_text} defines {what}; write APP.py:name to pick one")
    return next(iter(servers.values()))


def run_loop(main: Coroutine[Any, Any, None], event_loop: EventLoop = "auto") -> None:
    """Run ``main`` to its end on the event loop ``event_loop`` names (see ``ServerSettings.event_loop``).

    uvloop runs the server's loop in C: about a tenth less CPU per request, and shorter
    loop iterations under load, so ``/health`` and streams answer sooner.
    """
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                main.close()
                raise SystemExit(
                    "workflows-server: WORKFLOWS_SERVER_EVENT_LOOP=uvloop, but uvloop is not installed: "
                    "pip install uvloop (Linux and macOS), or set it to auto or asyncio"
                ) from None
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="workflows-server",
        description="Serve the WorkflowServer defined in APP.py over HTTP; every run is kept in the store and "
        "continues after a crash or a restart. 'workflows-server view RUN.json' opens exported runs read-only "
        "(see 'workflows-server view --help').",
        epilog="Every setting can also be given by environment variable: "
        + "; ".join(f"{s.env}: {s.help}" for s in SETTINGS),
    )
    cli.add_argument("app", metavar="APP.py", help="the Python file that creates a WorkflowServer (APP.py:name to pick one)")
    _flags(cli, _FLAGS)
    return cli


def _flags(cli: argparse.ArgumentParser, fields: Sequence[str]) -> None:
    helps = {s.field: s for s in SETTINGS}
    for field in fields:
        setting = helps[field]
        cli.add_argument(f"--{field}", type=setting.parse, default=None, help=f"{setting.help} [env {setting.env}]")


def view_parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="workflows-server view",
        description="Open runs exported from the workflow debugger (a run page's Export button, or "
        "GET /api/runs/{id}/export) read-only in the same debugger, on this machine: no store, no workflow code, "
        "no access to the server they came from.",
    )
    cli.add_argument("files", metavar="RUN.json", nargs="+", type=Path, help="exported runs to show")
    _flags(cli, ("host", "port"))
    return cli


def view(argv: Sequence[str]) -> None:
    """``workflows-server view RUN.json``: serve the debugger over exported runs until stopped."""
    import uvicorn

    from workflows_server.debugger.exported import ExportedRuns, ExportError, view_app

    args = view_parser().parse_args(argv)
    try:
        settings = ServerSettings.from_env(host=args.host, port=args.port)
        runs = ExportedRuns.from_files(args.files)
    except (ValueError, ExportError) as exc:
        raise SystemExit(f"workflows-server view: {exc}") from None
    base = f"http://{settings.host}:{settings.port}"
    only = next(iter(runs.runs)) if len(runs.runs) == 1 else None
    print(f"workflows-server view: {len(runs.runs)} exported run(s), read-only, at "
          f"{base}{'/runs/' + only if only else '/'}", file=sys.stderr, flush=True)
    uvicorn.run(view_app(runs, settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=max(1, int(settings.shutdown_seconds / 2)))


def main(argv: Sequence[str] | None = None) -> None:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["view"] and not Path("view").is_file():
        view(given[1:])
        return
    args = parser().parse_args(given)
    try:
        settings = ServerSettings.from_env(**{field: getattr(args, field) for field in _FLAGS})
    except ValueError as exc:
        raise SystemExit(f"workflows-server: {exc}") from None
    server = load_app(args.app)
    # Flags and variables win over what the file configured.
    server.configure(settings=settings, store=args.store)
    print(f"workflows-server: serving {', '.join(sorted(server.workflows)) or 'no workflows'} on "
          f"http://{settings.host}:{settings.port} (store {server.store_url})", file=sys.stderr, flush=True)
    # Open streams (the debugger's pages follow the server with SSE) would hold a graceful stop
    # for ever: serve() gives them half of WORKFLOWS_SERVER_SHUTDOWN_SECONDS, then cuts them.
    run_loop(server.serve(), settings.event_loop)


if __name__ == "__main__":
    main()
