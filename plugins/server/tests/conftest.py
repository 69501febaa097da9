"""Fixtures of the server tests: a side-effect log and real server processes (see server_helpers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_helpers import APPS, ServerProcess  # noqa: E402


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "side-effects.log"
    path.touch()
    return path


@pytest.fixture
def make_server(tmp_path: Path, log_file: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def make(app: str = "durable_app.py", store: str | None = None) -> ServerProcess:
        server = ServerProcess(app=APPS / app, store=store or f"sqlite:///{tmp_path / 'runs.db'}", log=log_file)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()



@pytest.fixture
def chromium() -> Iterator[object]:
    """Headless Debian chromium, driven by Playwright (skips when either is missing)."""
    from debugger_helpers import BROWSER_ARGS, CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    """The folder whose files open the gated steps of apps/replica_app.py (``<tag>`` or ``all``)."""
    folder = tmp_path / "gates"
    folder.mkdir()
    return folder


@pytest.fixture
def make_replica(
    fresh_postgres_db: str, log_file: Path, gates: Path
) -> Iterator[Callable[..., ServerProcess]]:
    """Start replicas of apps/replica_app.py on one fresh PostgreSQL database (short leases for the tests)."""
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        settings = {
            "WORKFLOWS_TEST_GATES": str(gates),
            "WORKFLOWS_SERVER_LEASE_SECONDS": "2",
            "WORKFLOWS_SERVER_POLL_SECONDS": "0.2",
            "WORKFLOWS_SERVER_LOG_LEVEL": "warning",
            **env,
        }
        server = ServerProcess(app=APPS / "replica_app.py", store=fresh_postgres_db, log=log_file, env=settings)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.resume()
        server.stop()
