"""LlamaIndex's real packages, run over this engine in a venv of their own.

``llama-index-core`` and ``llama-index-utils-workflow`` both require
``llama-index-workflows``, which provides the import name ``workflows`` too: installed
normally, they would replace this engine. So this suite builds a venv (cached under
``.venv/cache``) with this engine installed from the checkout, the two packages installed
with ``--no-deps``, and then their other requirements (read from their metadata) except
``llama-index-workflows``. The scenarios in ``scenarios/`` run there, in one pytest
process; each outer test reports one scenario's outcome.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.venvs import REPO, cached_venv, pip_install, run_python  # noqa: E402

# The scenarios import llama_index, which only the suite's venv has.
collect_ignore = ["scenarios"]

# Every package of the ecosystem that imports ``workflows``: the scenarios check that each of
# their imports resolves, and run them (agents, drawings, OpenInference's and
# llama-index-observability-otel's tracing) on this engine.
CLIENTS = [
    "llama-index-core>=0.14.25",
    "llama-index-utils-workflow>=0.11",
    "openinference-instrumentation-llama-index>=4.6.1",
    "llama-index-observability-otel>=0.7",
    "llama-agents-client>=0.4.1",
]
EXTRA = [
    "llama-index-instrumentation>=0.6",
    "opentelemetry-sdk>=1.27",
    "opentelemetry-exporter-otlp-proto-http>=1.27",
    "pytest>=8",
    "pytest-asyncio>=0.24",
]
# Provided by this engine (or installed above): never from their requirements.
# llama-index-instrumentation comes from EXTRA: llama-index-observability-otel 0.7 asks for
# <0.6, while this engine's bridge is tested with 0.6 (the scenarios show it works with both).
SKIP = {
    "llama-index-workflows",
    "llama-index-core",
    "llama-index-utils-workflow",
    "llama-index-instrumentation",
    "llama-agents-client",
}

_REQUIREMENTS_SCRIPT = """
import json, sys
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement
skip = set(json.loads(sys.argv[1]))
out = []
for dist in json.loads(sys.argv[2]):
    for line in requires(dist) or ():
        req = Requirement(line)
        if req.name.lower() in skip or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        out.append(str(req).split(";")[0].strip())
print(json.dumps(sorted(set(out))))
"""


def _build(python: Path) -> None:
    pip_install(python, "-e", str(REPO))
    pip_install(python, "--no-deps", *CLIENTS)
    skip, clients = json.dumps(sorted(SKIP)), json.dumps(_names(CLIENTS))
    requirements = json.loads(run_python(python, "-c", _REQUIREMENTS_SCRIPT, skip, clients))
    pip_install(python, *requirements, *EXTRA)
    # The clients must import this checkout's engine, and nothing may have pulled the reference in.
    where = run_python(python, "-c", "import workflows, sys; print(workflows.__file__)").strip()
    if not where.startswith(str(REPO / "src")):
        raise RuntimeError(f"the compat venv imports workflows from {where}, not from this checkout")
    listed = run_python(python, "-m", "pip", "list", "--format=json")
    if any(p["name"].lower() == "llama-index-workflows" for p in json.loads(listed)):
        raise RuntimeError("llama-index-workflows got installed in the compat venv")


def _names(requirements: list[str]) -> list[str]:
    return [re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0] for requirement in requirements]


def compat_python() -> Path:
    """The python of the suite's venv, built on first use (a few minutes with a cold pip cache)."""
    pyproject = (REPO / "pyproject.toml").read_bytes()
    key = json.dumps([CLIENTS, EXTRA, sorted(SKIP), hashlib.sha256(pyproject).hexdigest(), str(REPO)])
    return cached_venv("compat-llamaindex", key, _build)


@pytest.fixture(scope="session")
def compat_venv_python() -> Path:
    return compat_python()
