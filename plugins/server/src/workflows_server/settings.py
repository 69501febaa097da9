"""Every setting of the server, named once: its field, its ``WORKFLOWS_SERVER_*`` variable, its default.

``ServerSettings.from_env()`` reads the environment; the CLI (``workflows-server``)
builds its options from ``SETTINGS`` too, so a flag and its variable cannot drift
apart. Explicit values (flags, constructor arguments) win over the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, get_args

ENV_PREFIX = "WORKFLOWS_SERVER_"
DEFAULT_STORE = "sqlite:///.workflows/runs.db"


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One setting: the ``ServerSettings`` field, how to parse its variable, and what it does."""

    field: str
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be more than 0")
    return value


def _prices(text: str) -> tuple[tuple[str, float, float], ...]:
    prices = []
    for part in text.split(","):
        if not part.strip():
            continue
        model, sep, rates = part.strip().rpartition("=")
        given, slash, taken = rates.partition("/")
        if not sep or not model or not slash:
            raise ValueError(f"{part.strip()!r} is not model=input/output (US dollars per million tokens)")
        prices.append((model.strip(), float(given), float(taken)))
    return tuple(prices)


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


EventLoop = Literal["auto", "uvloop", "asyncio"]
EVENT_LOOPS: tuple[EventLoop, ...] = get_args(EventLoop)


def _event_loop(text: str) -> EventLoop:
    choice = text.strip().lower()
    for known in EVENT_LOOPS:
        if choice == known:
            return known
    raise ValueError(f"must be one of {', '.join(EVENT_LOOPS)}")


def _origins(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


SETTINGS: tuple[Setting, ...] = (
    Setting(field="host", parse=str, help="interface to listen on (default 127.0.0.1)"),
    Setting(field="port", parse=int, help="TCP port to listen on (default 8080)"),
    Setting(
        field="store",
        parse=str,
        help=f"where runs are kept: sqlite:///path/to/runs.db (default {DEFAULT_STORE}, relative to the working "
        "directory), or postgresql://user:password@host:5432/db to share runs with every replica on that database",
    ),
    Setting(
        field="token",
        parse=str,
        help="when set, every request but /health needs the header 'Authorization: Bearer <token>'",
    ),
    Setting(
        field="read_token",
        parse=str,
        help="a second token that grants reading only: its holder sees every run in the debugger and the API, and "
        "every action (start, answer, cancel, re-run, fork, purge) is refused with 403 (needs "
        f"{ENV_PREFIX}TOKEN)",
    ),
    Setting(
        field="session_seconds",
        parse=_positive_float,
        help="how long a login to the debugger lasts (default 43200: 12 hours)",
    ),
    Setting(
        field="allowed_hosts",
        parse=_origins,
        help="comma-separated host names this server answers to besides localhost, 127.0.0.1, [::1] and --host "
        "(against DNS rebinding; '.example.com' allows example.com and its subdomains, '*' any name); other Host "
        "headers get 400",
    ),
    Setting(
        field="allowed_origins",
        parse=_origins,
        help="comma-separated origins (https://ui.example.com) whose pages may send state-changing requests "
        "besides the server's own; any other Origin gets 403",
    ),
    Setting(
        field="cors_origins",
        parse=_origins,
        help="comma-separated origins allowed to call the API from a browser (CORS is off when empty); '*' allows any",
    ),
    Setting(
        field="max_body_bytes",
        parse=_positive_int,
        help="largest request body accepted, in bytes (default 1048576); larger bodies get 413",
    ),
    Setting(
        field="idle_release_seconds",
        parse=_positive_float,
        help="how long a run that only waits for an outside event stays in memory before it is kept in the store "
        "alone (default 0: at once)",
    ),
    Setting(
        field="sse_heartbeat_seconds",
        parse=_positive_float,
        help="interval of the comment lines that keep an idle SSE stream open through proxies (default 15; 0: none)",
    ),
    Setting(field="log_level", parse=str, help="uvicorn's log level (default info)"),
    Setting(
        field="event_loop",
        parse=_event_loop,
        help="the event loop workflows-server serves on: auto (default: uvloop where it is installed, as the "
        "server's dependencies install it on Linux and macOS; else asyncio's), uvloop, or asyncio",
    ),
    Setting(
        field="lease_seconds",
        parse=_positive_float,
        help="replicas on PostgreSQL: how long a replica's claim on a run lasts without a heartbeat; a dead "
        "replica's runs are taken over after it (default 30)",
    ),
    Setting(
        field="max_runs",
        parse=_positive_int,
        help="replicas on PostgreSQL: how many runs this replica holds in memory at once; more runs wait in the "
        "database's queue for a replica with room (default 100)",
    ),
    Setting(
        field="poll_seconds",
        parse=_positive_float,
        help="replicas on PostgreSQL: how often a replica looks for queued runs and lapsed leases besides "
        "LISTEN/NOTIFY wake-ups (default 1)",
    ),
    Setting(
        field="replica_id",
        parse=str,
        help="replicas on PostgreSQL: this replica's name in its claims (default host-pid-random)",
    ),
    Setting(
        field="retention_seconds",
        parse=_positive_float,
        help="finished runs are purged from the store this long after they ended (default 2592000: 30 days; "
        "0: kept forever)",
    ),
    Setting(
        field="shutdown_seconds",
        parse=_positive_float,
        help="how long a stopping server (SIGTERM, Ctrl-C) waits for open requests and the store's last writes "
        "before it exits anyway (default 8); runs not written by then continue from their last durable record",
    ),
    Setting(
        field="phoenix_url",
        parse=str,
        help="Phoenix's address (e.g. http://localhost:6006): the debugger links each run to its trace there "
        "({url}/redirects/traces/{trace_id}; a URL containing {trace_id} is used as the link's template)",
    ),
    Setting(
        field="langfuse_url",
        parse=str,
        help="Langfuse's address (e.g. https://cloud.langfuse.com): the debugger links each run to its trace there "
        "({url}/trace/{trace_id}; a URL containing {trace_id} is used as the link's template)",
    ),
    Setting(
        field="llm_prices",
        parse=_prices,
        help="US dollars per million tokens by model, for the debugger's cost column when the LLM spans carry no "
        "llm.cost.*: 'model=input/output,...' (e.g. gpt-4o-mini=0.15/0.6)",
    ),
    Setting(
        field="bulk_max_runs",
        parse=_positive_int,
        help="the most runs one action of the debugger's run list may cancel or re-run at once (POST "
        "/api/runs/actions; default 1000); a larger selection is refused before any run is touched",
    ),
    Setting(
        field="debugger",
        parse=_flag,
        help="serve the workflow debugger at / (default true; false: the API alone)",
    ),
)


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """The server's settings; see ``SETTINGS`` for what each does and its variable."""

    host: str = "127.0.0.1"
    port: int = 8080
    store: str = DEFAULT_STORE
    token: str | None = None
    read_token: str | None = None
    session_seconds: float = 12 * 3600.0
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    idle_release_seconds: float = 0.0
    sse_heartbeat_seconds: float = 15.0
    log_level: str = "info"
    event_loop: EventLoop = "auto"
    lease_seconds: float = 30.0
    max_runs: int = 100
    poll_seconds: float = 1.0
    replica_id: str | None = None
    retention_seconds: float = 30 * 24 * 3600.0
    shutdown_seconds: float = 8.0
    phoenix_url: str | None = None
    langfuse_url: str | None = None
    llm_prices: tuple[tuple[str, float, float], ...] = ()
    """``(model, input, output)``: US dollars per million tokens."""
    bulk_max_runs: int = 1000
    debugger: bool = True

    def __post_init__(self) -> None:
        if self.read_token and not self.token:
            raise ValueError(f"{ENV_PREFIX}READ_TOKEN is set without {ENV_PREFIX}TOKEN: set both (the read-only "
                             "token grants less than the token)")
        if self.read_token and self.read_token == self.token:
            raise ValueError(f"{ENV_PREFIX}READ_TOKEN must differ from {ENV_PREFIX}TOKEN")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``WORKFLOWS_SERVER_*`` variables; ``overrides`` that are not ``None`` win.

        A variable that does not parse raises ``ValueError`` naming it and what it expects.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            if raw is None or raw == "":
                continue
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError as exc:
                raise ValueError(f"{setting.env}={raw!r} is not valid ({exc}): {setting.help}") from None
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown server setting(s): {', '.join(sorted(unknown))}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


__all__ = ["DEFAULT_STORE", "ENV_PREFIX", "EVENT_LOOPS", "EventLoop", "SETTINGS", "ServerSettings", "Setting"]
