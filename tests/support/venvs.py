"""Throwaway virtual environments for tests that need another distribution of ``workflows``.

Some tests compare this engine with the reference (``llama-index-workflows``) or run
real clients of it (``llama-index-core``) over this engine. Neither may be installed
in the project's own ``.venv``: both the reference and this engine provide the import
name ``workflows``. These tests build their own venvs with the ordinary ``pip``,
under ``.venv/cache/`` so that they are rebuilt only when what they install changes
and disappear with ``.venv``.

A venv is ready once its ``ready`` marker holds the key it was built for; a half-built
one (an install that failed or was interrupted) is wiped and built again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("WORKFLOWS_TEST_VENV_CACHE", REPO / ".venv" / "cache"))

# Generous: a cold pip cache on CI downloads a few hundred MB for llama-index-core.
INSTALL_TIMEOUT = 900


class VenvError(RuntimeError):
    """A test venv could not be built; the message holds pip's output."""


def python_of(root: Path) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run_python(python: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    """Run ``python args...`` and return its stdout; raise ``VenvError`` with its output if it fails."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONPATH", None)  # the test process's path must not leak into the venv
    proc = subprocess.run(
        [str(python), *args], capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )
    if proc.returncode != 0:
        raise VenvError(f"{python} {' '.join(args)} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def pip_install(python: Path, *args: str) -> None:
    run_python(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args, timeout=INSTALL_TIMEOUT)


def cached_venv(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """The python of venv ``name``, built by ``build(python)`` unless a venv for ``key`` exists.

    ``key`` should change whenever what ``build`` installs changes (versions, the
    engine's own dependencies): the venv is then rebuilt.
    """
    digest = hashlib.sha256(f"{sys.version}|{key}".encode()).hexdigest()[:16]
    root = CACHE / f"{name}-{digest}"
    marker = root / "ready"
    python = python_of(root)
    if marker.exists() and marker.read_text() == key and python.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    try:
        build(python)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    marker.write_text(key)
    return python
