"""Real server processes for the server tests: started on a free loopback port, killed by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
from support.processes import free_port

APPS = Path(__file__).parent / "apps"


def wait_for(condition: Callable[[], object], what: str, timeout: float = 20.0) -> object:
    """Check ``condition`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class ServerProcess:
    """One ``workflows-server`` process on ``port``, serving ``app`` with ``store``."""

    app: Path
    store: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    output: Path | None = None
    launcher: tuple[str, ...] = ()
    """A command the server runs under (e.g. ``setpriv`` dropping capabilities)."""
    ready: tuple[int, ...] = (200,)
    """The ``/health`` statuses that say the server is up (503: up, with a store that cannot write)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **env: str) -> ServerProcess:
        self.env.update(env)
        self.output = self.log.with_suffix(f".server-{self.port}-{time.monotonic_ns()}.txt")
        environment = {**os.environ, "WORKFLOWS_TEST_LOG": str(self.log), **self.env}
        environment.pop("WORKFLOWS_EXPORTERS", None)
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [*self.launcher, sys.executable, "-m", "workflows_server.cli", str(self.app), "--port", str(self.port),
                 "--store", self.store],
                stdout=out, stderr=subprocess.STDOUT, env=environment,
            )
        wait_for(self._healthy, f"the server on port {self.port} to answer /health")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.text()}")
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code in self.ready
        except httpx.HTTPError:
            return False

    def text(self) -> str:
        return self.output.read_text() if self.output and self.output.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to write anything more."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the process stops where it is (its connections stay open) until ``resume``."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def replica(self) -> dict:
        """This server's ``GET /api/replica``: its runs, claims and counters."""
        return httpx.get(self.url + "/api/replica", timeout=5).json()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]
