"""``WorkflowServer``: serve workflows over HTTP, every run durable in a store."""

from __future__ import annotations

import contextlib
import dataclasses
import logging.config
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from workflows import Workflow
from workflows.events import Event
from workflows_server.http.routes import Api
from workflows_server.durable import DurableRuntime
from workflows_server.http.guard import (
    Auth,
    CrossSiteCheck,
    HostCheck,
    InputCheck,
    RequestIds,
    SecurityHeaders,
    Sessions,
    allowed_hosts,
    exposure_warning,
    log_config,
    mask_url,
)
from workflows_server.http.middleware import RequestSpans, http_error, logger, route_namer, store_error
from workflows_server.runs import RunService
from workflows_server.settings import ServerSettings
from workflows_server.store import RunStore, SharedStore, StoreError, open_store
from workflows_server.telemetry import register_run_metrics


class WorkflowServer:
    """Serves workflows over the HTTP API of llama-agents-client, keeping every run in ``store``.

    ``store`` is a ``RunStore``, a store URL (``sqlite:///path/runs.db``; ``postgresql://...`` to share
    the runs with every replica of the server on that database) or ``None`` for
    ``WORKFLOWS_SERVER_STORE`` or else the default file ``./.workflows/runs.db``.
    ``settings`` defaults to ``ServerSettings.from_env()``. The store is opened when the
    app starts (``serve()``, or the ASGI lifespan of ``app`` when mounted), and runs
    that were going on when a previous server stopped or died continue then.
    """

    def __init__(self, store: RunStore | str | Path | None = None, *, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings.from_env()
        self._store_spec: RunStore | str | Path = store if store is not None else self.settings.store
        self.workflows: dict[str, Workflow] = {}
        self._additional: dict[str, list[type[Event]]] = {}
        self._runtime: DurableRuntime | None = None
        self._runs: RunService | None = None
        self._app: Starlette | None = None

    def configure(self, *, settings: ServerSettings | None = None, store: RunStore | str | Path | None = None) -> None:
        """Replace the settings and/or the store before the server starts (the CLI's flags do this)."""
        if self._runtime is not None or self._app is not None:
            raise RuntimeError("configure() must be called before the server's app or runtime is used")
        if settings is not None:
            self.settings = settings
        if store is not None:
            self._store_spec = store

    @property
    def store_url(self) -> str:
        """Where the runs are kept (the store's URL, or what will be opened), its password masked."""
        spec = self._store_spec
        return mask_url(spec.url if isinstance(spec, RunStore) else str(spec))

    # ------------------------------------------------------------------ workflows
    def add_workflow(self, name: str, workflow: Workflow, additional_events: Iterable[type[Event]] = ()) -> None:
        """Serve ``workflow`` as ``name``; its runs use the server's durable runtime.

        ``additional_events`` are event classes clients may send that no step declares
        (for example events a step waits for with ``ctx.wait_for_event``).
        """
        if not isinstance(workflow, Workflow):
            raise TypeError(f"add_workflow({name!r}, ...) needs a Workflow instance, got {type(workflow).__name__}")
        if not name or "/" in name:
            raise ValueError(f"workflow name {name!r} must be non-empty and contain no '/'")
        if name in self.workflows:
            raise ValueError(f"a workflow named {name!r} is already served")
        for cls in additional_events:
            if not (isinstance(cls, type) and issubclass(cls, Event)):
                raise TypeError(f"additional_events of {name!r} must be Event classes, got {cls!r}")
        self.workflows[name] = workflow
        self._additional[name] = list(additional_events)
        if self._runtime is not None:
            self._attach(name, workflow, self._runtime)

    def event_classes(self, name: str) -> list[type[Event]]:
        """The event classes of workflow ``name`` that clients may send or see."""
        workflow = self.workflows[name]
        return [*workflow.events, *self._additional.get(name, ())]

    # ------------------------------------------------------------------ runtime
    @property
    def runtime(self) -> DurableRuntime:
        """The durable runtime of the served workflows (its store is opened on first use)."""
        if self._runtime is None:
            store = self._store_spec if isinstance(self._store_spec, RunStore) else open_store(self._store_spec)
            if isinstance(store, SharedStore) and self.settings.replica_id:
                store.owner = self.settings.replica_id
            self._runtime = DurableRuntime(store)
            for name, workflow in self.workflows.items():
                self._attach(name, workflow, self._runtime)
        return self._runtime

    def _attach(self, name: str, workflow: Workflow, runtime: DurableRuntime) -> None:
        workflow.runtime = runtime
        runtime.names[id(workflow)] = name
        runtime.extra_types[id(workflow)] = list(self._additional.get(name, ()))

    @property
    def runs(self) -> RunService:
        if self._runs is None:
            settings = self.settings
            self._runs = RunService(
                self.runtime, self.workflows, idle_release_seconds=settings.idle_release_seconds,
                lease_seconds=settings.lease_seconds, max_runs=settings.max_runs, poll_seconds=settings.poll_seconds,
                retention_seconds=settings.retention_seconds,
                # Half the grace for the runs and the store, half for open requests (see serve()).
                shutdown_seconds=settings.shutdown_seconds / 2,
            )
            register_run_metrics(self._runs)
        return self._runs

    # ------------------------------------------------------------------ ASGI app
    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        runs = self.runs
        await runs.start()
        try:
            yield
        finally:
            await runs.stop()

    @property
    def app(self) -> Starlette:
        """The ASGI app (mountable in Starlette or FastAPI; its lifespan starts the runs)."""
        if self._app is None:
            settings = self.settings
            sessions = Sessions(settings.token, settings.read_token, settings.session_seconds) if settings.token else None
            api = Api(self)
            routes = api.routes()
            if self.settings.debugger:
                from workflows_server.debugger import debugger_routes
                from workflows_server.debugger.login import login_routes

                routes += debugger_routes(self) + login_routes(sessions, settings.max_body_bytes)
            middleware = [
                Middleware(SecurityHeaders),
                Middleware(RequestSpans, route_of=route_namer(routes)),
                Middleware(RequestIds),
                Middleware(HostCheck, allowed=allowed_hosts(settings.host, settings.allowed_hosts)),
                Middleware(InputCheck),
                Middleware(CrossSiteCheck, allowed_origins=(*settings.allowed_origins, *settings.cors_origins)),
            ]
            if self.settings.cors_origins:
                origins = list(self.settings.cors_origins)
                middleware.append(Middleware(
                    CORSMiddleware,
                    allow_origins=origins, allow_methods=["*"], allow_headers=["*"], allow_credentials="*" not in origins,
                ))
            if sessions is not None:
                middleware.append(Middleware(Auth, sessions=sessions))
            self._app = Starlette(
                routes=routes,
                middleware=middleware,
                lifespan=self._lifespan,
                exception_handlers={HTTPException: http_error, StoreError: store_error},
            )
        return self._app

    async def serve(self, host: str | None = None, port: int | None = None, **uvicorn_options: Any) -> None:
        """Serve until stopped (Ctrl-C, SIGTERM); ``host``/``port`` default to the settings.

        It serves on the running loop: ``workflows_server.cli.run_loop(server.serve())`` runs
        it on uvloop where installed, as ``workflows-server`` does (``asyncio.run`` would not).
        """
        import uvicorn

        host = host or self.settings.host
        if host != self.settings.host and self._app is None:
            # The app answers to the name it listens on (HostCheck): build it with this one.
            self.settings = dataclasses.replace(self.settings, host=host)
        if "log_config" not in uvicorn_options:
            # Configured here rather than by uvicorn: the warning below is written before the store opens.
            logging.config.dictConfig(log_config(self.settings.log_level))
            uvicorn_options["log_config"] = None
        warning = exposure_warning(host, self.settings.token)
        if warning:
            logger.warning("%s", warning)
        # Open requests (a /run waiting on a run, a stream) get the stop's grace, then are cut:
        # SIGTERM exits within it whatever the runs or the store are doing.
        uvicorn_options.setdefault("timeout_graceful_shutdown", max(1, int(self.settings.shutdown_seconds / 2)))
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port if port is not None else self.settings.port,
            log_level=self.settings.log_level,
            **uvicorn_options,
        )
        await uvicorn.Server(config).serve()


__all__ = ["WorkflowServer"]
