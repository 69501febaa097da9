"""Run one scenario once, in a fresh process of one engine, and read back its result."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

from benchmarks.catalog import SCENARIO_DIR, Variant
from benchmarks.engines import Engine

# The same marker as in scenarios/_common.py (the scripts cannot import this package:
# they also run in the reference venv).
RESULT_PREFIX = "BENCH-RESULT "

# Settings that would change what the engine does (enable exporters, tracing, a
# different `workflows` on the path) are not passed to the scenario processes.
_SCRUBBED_PREFIXES = ("WORKFLOWS_", "OTEL_", "PHOENIX_", "LANGFUSE_")
_SCRUBBED_NAMES = {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"}


@dataclass
class Measurement:
    variant: str
    engine: str
    repetition: int
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def command(engine: Engine, variant: Variant, size: str) -> list[str]:
    args = [str(engine.python), str(variant.script_path()), "--engine", engine.name]
    for name, value in variant.args[size].items():
        args += [f"--{name}", f"{value:g}"]
    if variant.traced:
        args.append("--traced")
        if variant.trace_detail != "full":
            args += ["--detail", variant.trace_detail]
    return args


def run_once(engine: Engine, variant: Variant, size: str, repetition: int, timeout: float) -> Measurement:
    """Run the variant's script; a crash, a timeout or a missing result line becomes ``error``."""
    measurement = Measurement(variant.key, engine.name, repetition)
    try:
        done = run_script(command(engine, variant, size), timeout)
    except subprocess.TimeoutExpired:
        measurement.error = f"timed out after {timeout:g} s"
        return measurement
    result = _result_line(done.stdout)
    if done.returncode != 0 or result is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        measurement.error = f"exit code {done.returncode}: {tail}"
        return measurement
    measurement.metrics = result["metrics"]
    measurement.info = result["info"]
    return measurement


def run_script(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a scenario command line (``args``, from ``command``, maybe wrapped) in the
    scenarios folder, with the environment cleaned; its output is captured as text."""
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=SCENARIO_DIR,
        env=_clean_environment(),
    )


def _result_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def _clean_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name not in _SCRUBBED_NAMES and not name.startswith(_SCRUBBED_PREFIXES)
    }
