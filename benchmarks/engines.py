"""The two engines compared, and the interpreter each one runs in.

Both engines are imported as ``workflows``, so they cannot share an interpreter: ours
runs in the interpreter that runs the harness (the project's venv, with the project
installed), the reference in a venv of its own that the harness creates with pip.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).parent
REFERENCE_VENV = BENCHMARKS_DIR / ".venv-llama"

# The newest releases, unpinned. The OpenInference instrumentor only hooks in when
# llama-index-core is installed (it patches llama-index-core's dispatcher, which the
# `workflows` package of llama-index-workflows reports through), hence the third package.
REFERENCE_PACKAGES = (
    "llama-index-workflows",
    "openinference-instrumentation-llama-index",
    "llama-index-core",
    "opentelemetry-sdk",
)


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    python: Path


def ours(python: Path | None = None) -> Engine:
    """This project's engine, run by ``python`` (default: the interpreter running the harness)."""
    return Engine("ours", "ours (otel-workflows)", python or Path(sys.executable))


def reference(venv: Path = REFERENCE_VENV) -> Engine:
    return Engine("llama", "reference (llama-index-workflows)", venv / "bin" / "python")


def check_ours(engine: Engine) -> None:
    """Fail clearly when the interpreter cannot import this project's engine."""
    probe = "from workflows import Workflow, Context, step; from workflows.events import StartEvent"
    done = subprocess.run([str(engine.python), "-c", probe], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{engine.python} cannot import this project's engine: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'unknown error'}. "
            "Install it first (`pip install -e .` in the repository root)."
        )


def ensure_reference(venv: Path = REFERENCE_VENV, *, upgrade: bool = False, log=print) -> Engine:
    """Create the reference venv with the newest releases if it is missing (or ``upgrade``)."""
    engine = reference(venv)
    if engine.python.exists() and not upgrade:
        return engine
    if not engine.python.exists():
        log(f"creating the reference venv in {venv} ...")
        subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
    log(f"installing {', '.join(REFERENCE_PACKAGES)} into {venv} with pip ...")
    subprocess.run(
        [str(engine.python), "-m", "pip", "install", "--quiet", "--upgrade", *REFERENCE_PACKAGES],
        check=True,
    )
    return engine


def _base_python() -> str:
    """The interpreter our venv was made from, so that both engines run on the same Python."""
    return getattr(sys, "_base_executable", None) or sys.executable


# The HTTP server comparison (benchmarks/server.py): the reference server on the
# reference engine of the issue, in a venv of its own.
REFERENCE_SERVER_VENV = BENCHMARKS_DIR / ".venv-llama-server"
REFERENCE_SERVER_PACKAGES = ("llama-agents-server==0.8.0", "llama-index-workflows==2.26.1")


def ensure_reference_server(venv: Path = REFERENCE_SERVER_VENV, *, log=print) -> Path:
    """The interpreter of a venv with llama-agents-server 0.8.0 on llama-index-workflows 2.26.1 (made if missing)."""
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating the reference server venv in {venv} ...")
        subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
        log(f"installing {', '.join(REFERENCE_SERVER_PACKAGES)} into {venv} with pip ...")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REFERENCE_SERVER_PACKAGES], check=True)
    return python
