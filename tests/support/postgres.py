"""A throwaway PostgreSQL cluster on a loopback port, for the tests that need a real one.

Debian's ``postgresql`` package (installed by ``scripts/setup.sh --test``) provides the
binaries. ``initdb`` refuses to run as root, so as root the cluster belongs to the
``postgres`` user; its folder is a fresh temporary one, removed when the session ends.
``postgres_url`` yields ``postgresql://postgres@127.0.0.1:PORT/workflows``; each test that
needs an empty database asks for ``fresh_postgres_db`` instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import processes


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _as_owner(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres user then.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary folder on a free loopback port; yield the URL of its
    ``workflows`` database; stop it and remove the folder at the end. ``RuntimeError`` if it is not installed."""
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh --test installs Debian's postgresql)")
    root = Path(tempfile.mkdtemp(prefix="workflows-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = processes.free_port()
    try:
        _run(_as_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
             "initdb")
        options = f"-p {port} -h 127.0.0.1 -k {sockets} -c fsync=off -c max_connections=200"
        _run(
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "start"]),
            "pg_ctl start",
        )
        _run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "workflows"], "createdb")
        yield f"postgresql://postgres@127.0.0.1:{port}/workflows"
    finally:
        subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True, timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(url: str, name: str | None = None) -> str:
    """Create a new, empty database on the cluster of ``url``; return its URL."""
    bindir = _bindir()
    assert bindir is not None
    name = name or f"t_{uuid.uuid4().hex[:12]}"
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    _run([str(bindir / "createdb"), "-h", host, "-p", port, "-U", "postgres", name], "createdb")
    return f"postgresql://postgres@{host}:{port}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL cluster (trust auth, loopback only) and its ``workflows`` database."""
    if _bindir() is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh --test installs Debian's postgresql)")
    with throwaway_cluster() as url:
        yield url


@pytest.fixture
def fresh_postgres_db(postgres_url: str) -> str:
    """The URL of a new, empty database on the session's cluster."""
    return create_database(postgres_url)
