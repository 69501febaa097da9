"""A tracing backend that is down, two ways, and a traced program run against it.

``closed_port()`` is a loopback port nothing listens on (connections are refused at
once); ``SilentServer`` accepts connections and never answers (each request waits for
the client's timeout). ``run_program()`` starts ``dead_backend_app.py`` in a fresh
interpreter: it traces many short runs through one exporter plugin, prints its results,
and returns; the caller then checks how long the interpreter takes to exit.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

# In a folder of its own: the script's folder goes first on sys.path, and support/phoenix.py
# would hide the phoenix package.
APP = Path(__file__).parent / "apps" / "dead_backend_app.py"
REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A loopback port that was free a moment ago (bound, then closed): connections to
    it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SilentServer:
    """Accepts every connection, reads what is sent, and never answers."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._stop_reader, self._stop_writer = socket.socketpair()
        self._selector.register(self._stop_reader, selectors.EVENT_READ)
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="silent-backend", daemon=True)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_writer.send(b"x")
        self._thread.join(timeout=5)
        for connection in self._connections:
            connection.close()
        self._listener.close()
        self._stop_reader.close()
        self._stop_writer.close()
        self._selector.close()

    def _serve(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.fileobj is self._stop_reader:
                    return
                if key.fileobj is self._listener:
                    try:
                        connection, _ = self._listener.accept()
                    except BlockingIOError:
                        continue
                    connection.setblocking(False)
                    self._connections.append(connection)
                    self._selector.register(connection, selectors.EVENT_READ)
                    continue
                connection = key.fileobj  # type: ignore[assignment]
                try:
                    data = connection.recv(65536)
                except (BlockingIOError, ConnectionError):
                    data = b"x"
                if not data:  # the client gave up: forget it
                    self._selector.unregister(connection)
                    connection.close()


@dataclass(frozen=True)
class ProgramExit:
    """How a traced program ended: its results line, stderr, and whether it exited in time."""

    results: str
    exited_in_time: bool
    returncode: int | None
    stderr: str


def run_program(plugin: str, port: int, *, runs: int = 200, exit_within: float = 6.0, options: str = "") -> ProgramExit:
    """Run ``runs`` traced runs exporting through ``plugin`` to ``127.0.0.1:port``; wait
    for its results (generously), then at most ``exit_within`` seconds for it to exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_", "LANGFUSE_", "WORKFLOWS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(APP), plugin, str(port), str(runs), options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_lines: list[str] = []
    drain = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    results = ""
    try:
        # Start-up and the runs are not what is measured: a generous bound, against a hang.
        timer = threading.Timer(120, process.kill)
        timer.start()
        try:
            for line in process.stdout:
                if line.startswith("RESULTS"):
                    results = line.strip()
                    break
        finally:
            timer.cancel()
        try:
            returncode: int | None = process.wait(timeout=exit_within)
            in_time = True
        except subprocess.TimeoutExpired:
            in_time, returncode = False, None
    finally:
        process.kill()
        process.wait()
        drain.join(timeout=5)
    return ProgramExit(results, in_time, returncode, "".join(stderr_lines))


def check_prompt_exit(program: ProgramExit, exit_within: float) -> None:
    """The checks every plugin's dead-backend test makes of a program that ran 200 traced runs."""
    assert program.results == "RESULTS 200", program.stderr[-3000:]
    assert program.exited_in_time, f"still running {exit_within}s after its results:\n{program.stderr[-3000:]}"
    assert program.returncode == 0, program.stderr[-3000:]
    summaries = [line for line in program.stderr.splitlines() if "span(s) could not be sent" in line]
    assert len(summaries) == 1, program.stderr[-3000:]
    assert "1400 workflow span(s)" in summaries[0]  # 200 runs of 7 spans
