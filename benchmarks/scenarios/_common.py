"""What every scenario script shares: its command line, its result line, tracing, memory.

A scenario script is run by the harness in a fresh process of one engine's interpreter
(this project's, or the reference venv's with `llama-index-workflows`). It imports only
the public API both engines share, measures one thing, and prints a single line
``BENCH-RESULT {json}`` that the harness reads back. Anything else it prints is ignored.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "

# The distribution that provides `workflows` for each engine, to report its version.
ENGINE_DISTRIBUTIONS = {"ours": "otel-workflows", "llama": "llama-index-workflows"}
TRACING_DISTRIBUTIONS = {
    "ours": ["opentelemetry-sdk"],
    "llama": ["opentelemetry-sdk", "openinference-instrumentation-llama-index", "llama-index-core"],
}


def parse_args(description: str, **sizes: int) -> argparse.Namespace:
    """Parse ``--engine``, ``--traced`` and one integer option per size (``n=5000`` gives ``--n``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--engine", choices=sorted(ENGINE_DISTRIBUTIONS), required=True)
    parser.add_argument("--traced", action="store_true", help="trace the run through the OpenTelemetry SDK")
    parser.add_argument("--idle", type=float, default=1.5, help="seconds of the idle window (waiting scenario)")
    parser.add_argument(
        "--detail", choices=("full", "steps"), default="full", help="our trace detail (the reference ignores it)"
    )
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="keep the garbage collector off while timing (to count the code's instructions alone)",
    )
    for name, default in sizes.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    _timing.collector_off = args.no_gc
    return args


def emit(args: argparse.Namespace, metrics: dict[str, float], **info: Any) -> None:
    """Print the result line: the metrics, plus what produced them."""
    info["versions"] = _versions(args)
    print(RESULT_PREFIX + json.dumps({"metrics": metrics, "info": info}), flush=True)


def _versions(args: argparse.Namespace) -> dict[str, str]:
    distributions = [ENGINE_DISTRIBUTIONS[args.engine]]
    if args.traced:
        distributions += TRACING_DISTRIBUTIONS[args.engine]
    versions = {"python": platform.python_version()}
    versions.update({name: metadata.version(name) for name in distributions})
    return versions


@dataclass
class _Timing:
    # With --no-gc: where a collection falls between two measured sizes would move an
    # instruction count per step by far more than a change to the code does.
    collector_off: bool = False


_timing = _Timing()


@dataclass
class Elapsed:
    wall_s: float = 0.0
    # Process CPU time (all threads): steadier than wall time when other programs
    # compete for the machine's cores.
    cpu_s: float = 0.0


@contextmanager
def timed() -> Iterator[Elapsed]:
    """Measure the wall and CPU time of the ``with`` block."""
    elapsed = Elapsed()
    # Start from a collected heap: the process's first full collection (of everything the
    # imports made) would otherwise land in whichever measurement crosses its threshold,
    # charging that one a one-off cost of tens of milliseconds.
    gc.collect()
    if _timing.collector_off:
        gc.disable()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield elapsed
    finally:
        elapsed.wall_s = time.perf_counter() - wall
        elapsed.cpu_s = time.process_time() - cpu
        gc.enable()


def rss_bytes() -> int:
    """The resident set size of this process, read from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def settled_rss_bytes() -> int:
    """RSS after a full garbage collection, so that garbage does not count as growth."""
    gc.collect()
    return rss_bytes()


@dataclass
class Tracing:
    """A real OpenTelemetry SDK pipeline (batch processor into an in-memory exporter)."""

    provider: Any
    exporter: Any

    def flush(self) -> None:
        self.provider.force_flush()

    def span_count(self) -> int:
        return len(self.exporter.get_finished_spans())


def start_tracing(engine: str, detail: str = "full") -> Tracing:
    """Configure the SDK and hook the engine's own tracing integration into it.

    Ours: the project's OpenTelemetry handler on the root dispatcher, with every span of
    the trace contract (``detail="steps"``: run and step spans, the rest as span events).
    The reference: OpenInference's LlamaIndex instrumentor, the usual way to trace
    `llama-index-workflows` into OpenTelemetry.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    # A queue large enough that no span is dropped: dropped spans would cost nothing and
    # flatter whichever engine produces them fastest.
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1 << 22))
    if engine == "ours":
        from workflows.instrumentation import get_dispatcher
        from workflows.instrumentation.otel import OpenTelemetryHandler

        get_dispatcher().add_handler(OpenTelemetryHandler(tracer_provider=provider, detail=detail))  # type: ignore[arg-type]
    else:
        from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

        LlamaIndexInstrumentor().instrument(tracer_provider=provider)
    return Tracing(provider, exporter)


def fail(message: str) -> None:
    """Stop the scenario with a message the harness shows (the run did something wrong)."""
    print(message, file=sys.stderr)
    raise SystemExit(2)
