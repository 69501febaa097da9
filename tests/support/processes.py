"""Server processes the tests start: a port for one, wait until it answers, stop it whatever state it is in."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Callable

import httpx


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(
    process: subprocess.Popen[bytes],
    url: str,
    *,
    timeout: float,
    what: str,
    log: Callable[[], str] = lambda: "",
) -> None:
    """Return once ``GET url`` answers 200; raise if ``process`` exits first or ``timeout`` seconds pass.

    ``what`` names the server in the error, ``log`` gives what it printed (the error shows it).
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with code {process.returncode} while starting\n{log()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer {url} within {timeout:.0f} s\n{log()}")
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop ``process``: SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
