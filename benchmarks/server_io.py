"""``python -m benchmarks.server_io``: the server's store I/O, measured against its targets in one run.

1. ``distant``: PostgreSQL 1 ms away in each direction. The server's PostgreSQL store
   goes through a delaying TCP proxy on loopback (benchmarks/delay_proxy.py), once at
   1 ms each way and once at 0 ms (the same proxy, no delay); 200 runs of a two-step
   workflow through ``POST /workflows/two/run``, 50 at a time. Reported: runs per
   second at each delay, and the throughput kept, (runs/s at 1 ms) / (runs/s at 0 ms)
   (target 0.6 or more). The measured round trip of ``SELECT 1`` through the proxy at
   each delay is reported next to it.
2. ``http``: 400 runs over HTTP, 20 at a time, on a SQLite store, against
   llama-agents-server 0.8.0 (benchmarks/server.py's comparison). Reported: seconds
   each, and the ratio ours/reference (target 0.05 or less); the CPU of each server and
   of the client (the client's alone, over the reference's time, is a floor under the ratio).
3. ``step``: a 10-step chain in-process, in memory and on ``DurableRuntime`` with a
   SQLite file (WAL), one run at a time and 50 at a time. Reported: microseconds per
   step each, and the store work per durable step, their difference (target 150 us or
   less, one run at a time); and the floor of a hop (``durable_hop_floor``).
4. ``health``: ``GET /health`` latency from a probe process of its own, with the server
   idle, then while 200 runs (50 at a time) go through it. Reported: p99 of each, and
   their ratio (target 5 or less: the event loop stays free while runs are stored). The
   floor: a bare server that answers ``/health`` alone (server_apps/bare_health.py),
   probed beside ours while another 200 runs go through ours: what the machine's other
   work (the load's client, our server's threads) adds to a request on its own.

Each measurement is repeated ``--repeat`` times, the order of its two sides flipped at
each repetition, on fresh databases; the targets are checked on the medians. Results:
``server_io_results.json`` (every repetition) and the "Server" section of RESULTS.md,
both in ``--out`` (default: benchmarks/). A throwaway PostgreSQL cluster is started for
``distant`` (Debian's postgresql, as the tests use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import report
from benchmarks.delay_proxy import delaying, round_trip_ms
from benchmarks.engines import BENCHMARKS_DIR
from benchmarks.server import _drive, durable_hop_floor, durable_step_cost, http_benchmark, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.postgres import create_database, throwaway_cluster  # noqa: E402

MEASUREMENTS = ("distant", "http", "step", "health")
RESULTS_JSON = "server_io_results.json"


@dataclass(frozen=True)
class Sizes:
    distant_runs: int
    distant_concurrency: int
    delay_ms: float
    http_runs: int
    http_concurrency: int
    step_runs: int
    health_runs: int
    health_concurrency: int
    idle_samples: int
    probe_interval_ms: float


SIZES = {
    "full": Sizes(distant_runs=200, distant_concurrency=50, delay_ms=1.0, http_runs=400, http_concurrency=20,
                  step_runs=300, health_runs=200, health_concurrency=50, idle_samples=300, probe_interval_ms=2.0),
    "tiny": Sizes(distant_runs=4, distant_concurrency=2, delay_ms=1.0, http_runs=4, http_concurrency=2,
                  step_runs=3, health_runs=4, health_concurrency=2, idle_samples=5, probe_interval_ms=2.0),
}


@dataclass(frozen=True)
class Target:
    goal: str
    measured: str
    met: bool


def _log(message: str) -> None:
    print(message, flush=True)


def _fresh_folder() -> contextlib.AbstractContextManager[str]:
    return tempfile.TemporaryDirectory(prefix="workflows-bench-")


def distant(cluster: str, sizes: Sizes, delay_ms: float) -> dict[str, float]:
    """Runs per second of our server on a fresh PostgreSQL database behind the proxy at ``delay_ms``."""
    database = create_database(cluster)
    address = database.split("@", 1)[1].split("/", 1)[0]
    with delaying(address, delay_ms) as proxied, _fresh_folder() as tmp:
        store = database.replace(address, proxied, 1)
        round_trip = round_trip_ms(store)
        with serving("ours", Path(tmp), store) as served:
            seconds = asyncio.run(_drive(served.url, sizes.distant_runs, sizes.distant_concurrency))
    return {"runs_per_second": sizes.distant_runs / seconds, "round_trip_ms": round_trip}


def p99(latencies: list[float]) -> float:
    if len(latencies) < 2:
        return max(latencies)
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


@contextlib.contextmanager
def _probe(url: str, sizes: Sizes, samples: int | None = None) -> Iterator[Callable[[], list[float]]]:
    """A health probe process on ``url``, started and ready; yields ``finish``: stop it, return its latencies."""
    command = [sys.executable, "-m", "benchmarks.health_probe", url, "--interval-ms", str(sizes.probe_interval_ms)]
    if samples is not None:
        command += ["--samples", str(samples)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def finish() -> list[float]:
        if samples is None:
            stdin.write("stop\n")
            stdin.flush()
        latencies: list[float] = json.loads(stdout.readline())
        if process.wait(timeout=60) != 0:
            raise RuntimeError(f"the health probe exited with {process.returncode}")
        return latencies

    try:
        if stdout.readline().strip() != "ready":
            raise RuntimeError(f"the health probe did not start (exit code {process.poll()})")
        yield finish
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def health(sizes: Sizes) -> dict[str, float]:
    """p99 of /health in ms with our server (SQLite store) idle, then while runs go through it; and the
    floor: a bare server's /health beside ours while the same runs go through ours."""
    with (_fresh_folder() as tmp, serving("ours", Path(tmp)) as served,
          serving("bare", Path(tmp)) as bare):
        url = served.url
        asyncio.run(_drive(url, 1, 1))  # first runs: imports and caches, before either window
        with _probe(url, sizes, samples=sizes.idle_samples) as finish:
            idle = finish()
        with _probe(url, sizes) as finish:
            asyncio.run(_drive(url, sizes.health_runs, sizes.health_concurrency))
            loaded = finish()
        with _probe(bare.url, sizes) as finish:
            asyncio.run(_drive(url, sizes.health_runs, sizes.health_concurrency))
            floor = finish()
    return {"idle_p99_ms": p99(idle), "loaded_p99_ms": p99(loaded), "floor_loaded_p99_ms": p99(floor),
            "idle_samples": len(idle), "loaded_samples": len(loaded)}


def http(sizes: Sizes, engine: str) -> dict[str, float]:
    with _fresh_folder() as tmp:
        measured = http_benchmark(engine, sizes.http_runs, sizes.http_concurrency, Path(tmp))
    return {"seconds": measured.seconds, "server_cpu_seconds": measured.server_cpu_seconds,
            "client_cpu_seconds": measured.client_cpu_seconds}


def step(sizes: Sizes) -> dict[str, float]:
    with _fresh_folder() as tmp:
        cost = durable_step_cost(sizes.step_runs, Path(tmp))
        floor = durable_hop_floor(sizes.step_runs * 10, Path(tmp))
    found = {**cost, "floor_us_per_hop": floor["us_per_hop"], "floor_cpu_us_per_hop": floor["cpu_us_per_hop"]}
    for prefix in ("", "together_"):  # store work: durable minus in memory, one run at a time and 50
        found[f"{prefix}store_us_per_step"] = cost[f"{prefix}sqlite_us_per_step"] - cost[f"{prefix}memory_us_per_step"]
        found[f"{prefix}store_cpu_us_per_step"] = (cost[f"{prefix}sqlite_cpu_us_per_step"]
                                                   - cost[f"{prefix}memory_cpu_us_per_step"])
    return found


@dataclass(frozen=True)
class Failure:
    repetition: int
    measurement: str
    error: str


def _distant_both(cluster: str, sizes: Sizes, flip: bool) -> dict[str, float]:
    found = {}
    delays = [0.0, sizes.delay_ms]
    for delay in reversed(delays) if flip else delays:
        side = "near" if delay == 0 else "far"
        found.update({f"distant_{side}_{key}": value for key, value in distant(cluster, sizes, delay).items()})
    return found


def _http_both(sizes: Sizes, engines: list[str], flip: bool) -> dict[str, float]:
    found = {}
    for engine in reversed(engines) if flip else engines:
        found.update({f"http_{engine}_{key}": value for key, value in http(sizes, engine).items()})
    return found


# What each measurement prints once done (formatted with the repetition's numbers).
SUMMARIES = {
    "distant": "{distant_near_runs_per_second:.0f} runs/s at 0 ms, {distant_far_runs_per_second:.0f} runs/s at 1 ms",
    "step": "store work {step_store_us_per_step:.0f} us per step ({step_store_cpu_us_per_step:.0f} us of CPU), "
            "{step_together_store_us_per_step:.0f} us with 50 runs at a time, floor of a hop {step_floor_us_per_hop:.0f} us",
    "health": "p99 idle {health_idle_p99_ms:.2f} ms, under load {health_loaded_p99_ms:.2f} ms, "
              "a bare server's beside the load {health_floor_loaded_p99_ms:.2f} ms",
}


def measure(chosen: list[str], engines: list[str], sizes: Sizes,
            repeat: int) -> tuple[list[dict[str, float]], list[Failure]]:
    """Every repetition's numbers (one flat dict per repetition), and the measurements that failed."""
    repetitions: list[dict[str, float]] = []
    failures: list[Failure] = []
    summaries = {**SUMMARIES, "http": ", ".join(
        f"{e} {{http_{e}_seconds:.2f}} s (server CPU {{http_{e}_server_cpu_seconds:.2f}} s, "
        f"client CPU {{http_{e}_client_cpu_seconds:.2f}} s)" for e in engines)}
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(throwaway_cluster()) if "distant" in chosen else ""
        for repetition in range(repeat):
            flip = repetition % 2 == 1  # which side of each comparison goes first
            jobs: dict[str, Callable[[], dict[str, float]]] = {
                "distant": functools.partial(_distant_both, cluster, sizes, flip),
                "http": functools.partial(_http_both, sizes, engines, flip),
                "step": lambda: {f"step_{key}": value for key, value in step(sizes).items()},
                "health": lambda: {f"health_{key}": value for key, value in health(sizes).items()},
            }
            numbers: dict[str, float] = {}
            for name in chosen:
                progress = f"[{repetition + 1}/{repeat}] {name}"
                try:
                    numbers.update(jobs[name]())
                except Exception as exc:  # one failed measurement is reported; the others go on
                    failures.append(Failure(repetition, name, f"{type(exc).__name__}: {exc}"))
                    _log(f"{progress}: FAILED ({type(exc).__name__}: {exc})")
                else:
                    _log(f"{progress}: " + summaries[name].format(**numbers))
            repetitions.append(numbers)
    return repetitions, failures


def medians(repetitions: list[dict[str, float]]) -> dict[str, float]:
    """The median of each number over the repetitions that measured it."""
    keys = dict.fromkeys(key for r in repetitions for key in r)
    return {key: statistics.median(r[key] for r in repetitions if key in r) for key in keys}


def evaluate(m: dict[str, float]) -> list[Target]:
    targets = []
    if "distant_far_runs_per_second" in m:
        kept = m["distant_far_runs_per_second"] / m["distant_near_runs_per_second"]
        targets.append(Target("distant database (1 ms each way): throughput kept >= 0.6", f"{kept:.2f}", kept >= 0.6))
    if "http_ours_seconds" in m and "http_reference_seconds" in m:
        ratio = m["http_ours_seconds"] / m["http_reference_seconds"]
        measured = f"{ratio:.3f}"
        if "http_ours_client_cpu_seconds" in m:
            # One client process cannot send the runs faster than its own CPU allows, whatever the server.
            floor = m["http_ours_client_cpu_seconds"] / m["http_reference_seconds"]
            measured += f" (the client's own CPU alone is {floor:.3f} of the reference's time)"
        targets.append(Target("HTTP on SQLite: ratio to llama-agents-server 0.8.0 <= 0.05", measured, ratio <= 0.05))
    if "step_store_us_per_step" in m:
        store = m["step_store_us_per_step"]
        measured = f"{store:.0f} us"
        if "step_floor_us_per_hop" in m:
            measured += (f" one run at a time ({m['step_together_store_us_per_step']:.0f} us with 50 at a time; "
                         f"the floor of one hop: {m['step_floor_us_per_hop']:.0f} us)")
        targets.append(Target("durable step on SQLite (WAL): store work <= 150 us per step", measured, store <= 150))
    if "health_idle_p99_ms" in m:
        ratio = m["health_loaded_p99_ms"] / m["health_idle_p99_ms"]
        measured = f"x{ratio:.2f}"
        if "health_floor_loaded_p99_ms" in m:
            # A server with nothing to do, beside the same load, over our idle p99: the machine's share.
            floor = m["health_floor_loaded_p99_ms"] / m["health_idle_p99_ms"]
            measured += f" (a bare server's /health beside the same load: x{floor:.2f})"
        targets.append(Target("/health p99 under load <= 5x idle p99", measured, ratio <= 5))
    return targets


# (key, what, unit) of the table's rows, in order; rows whose key was not measured are left out.
ROWS = (
    ("distant_near_runs_per_second", "distant: runs per second, proxy at 0 ms", ""),
    ("distant_far_runs_per_second", "distant: runs per second, proxy at 1 ms each way", ""),
    ("distant_near_round_trip_ms", "distant: SELECT 1 round trip through the proxy at 0 ms", "ms"),
    ("distant_far_round_trip_ms", "distant: SELECT 1 round trip through the proxy at 1 ms", "ms"),
    ("http_ours_seconds", "http: ours, total", "s"),
    ("http_reference_seconds", "http: llama-agents-server 0.8.0, total", "s"),
    ("http_ours_server_cpu_seconds", "http: ours, server CPU", "s"),
    ("http_reference_server_cpu_seconds", "http: llama-agents-server 0.8.0, server CPU", "s"),
    ("http_ours_client_cpu_seconds", "http: the client's CPU, against ours", "s"),
    ("http_reference_client_cpu_seconds", "http: the client's CPU, against llama-agents-server", "s"),
    ("step_memory_us_per_step", "step: in memory, per step", "us"),
    ("step_sqlite_us_per_step", "step: durable on SQLite (WAL), per step", "us"),
    ("step_store_us_per_step", "step: store work per durable step (the difference)", "us"),
    ("step_memory_cpu_us_per_step", "step: in memory, CPU per step", "us"),
    ("step_sqlite_cpu_us_per_step", "step: durable on SQLite (WAL), CPU per step (all threads)", "us"),
    ("step_store_cpu_us_per_step", "step: store work per durable step in CPU (the difference)", "us"),
    ("step_together_store_us_per_step", "step: store work per durable step, 50 runs at a time (commits shared)",
     "us"),
    ("step_together_store_cpu_us_per_step", "step: store work per durable step in CPU, 50 runs at a time", "us"),
    ("step_floor_us_per_hop", "step: floor of a hop (hand-off to the store thread and back, one commit of a "
     "journal row and a stream row)", "us"),
    ("step_floor_cpu_us_per_hop", "step: floor of a hop, CPU", "us"),
    ("health_idle_p99_ms", "health: /health p99, idle", "ms"),
    ("health_loaded_p99_ms", "health: /health p99, while runs go through", "ms"),
    ("health_floor_loaded_p99_ms", "health: a bare server's /health p99 beside ours, while runs go through ours",
     "ms"),
)


def machine() -> dict[str, str]:
    info = report.machine()
    info["python"] = platform.python_version()
    return info


def section(command: str, started: datetime, sizes: Sizes, repetitions: list[dict[str, float]],
            machine_info: dict[str, str], targets: list[Target], failures: list[Failure]) -> str:
    mid = medians(repetitions)
    lines = [
        "## Server",
        "",
        (f"Produced by `{command}` on {started:%Y-%m-%d %H:%M} UTC: issue 22's targets for the server's "
         f"store I/O. Each cell is the median of {len(repetitions)} repetition(s) (min-max in parentheses), "
         "the two sides of each comparison alternating. See README.md for what each measurement does; every "
         f"repetition's numbers are in {RESULTS_JSON}."),
        "",
        "Machine: " + "; ".join(f"{name}: {value}" for name, value in machine_info.items()) + ".",
        "",
        (f"Sizes: distant {sizes.distant_runs} runs, {sizes.distant_concurrency} at a time, "
         f"{sizes.delay_ms:g} ms each way; http {sizes.http_runs} runs, {sizes.http_concurrency} at a time; "
         f"step {sizes.step_runs} runs of a 10-step chain; health {sizes.health_runs} runs, "
         f"{sizes.health_concurrency} at a time, probe every {sizes.probe_interval_ms:g} ms, "
         f"{sizes.idle_samples} idle samples."),
        "",
        "| measurement | median (min-max) |",
        "| --- | ---: |",
    ]
    for key, what, unit in ROWS:
        if key in mid:
            values = [r[key] for r in repetitions if key in r]
            cell = (f"{report.format_value(mid[key])} ({report.format_value(min(values))}-"
                    f"{report.format_value(max(values))})")
            lines.append(f"| {what}{f' ({unit})' if unit else ''} | {cell} |")
    lines += ["", "Targets (on the medians):", ""]
    lines += [f"- {t.goal}: {t.measured} -> {'met' if t.met else 'NOT met'}" for t in targets]
    if failures:
        lines += ["", "Failed measurements (left out of the medians):", ""]
        lines += [f"- repetition {f.repetition + 1}, {f.measurement}: {f.error}" for f in failures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_io", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", choices=sorted(SIZES), default="full",
                        help="full (default): the sizes of the targets; tiny: seconds, to check the harness")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 3, 1 with --sizes tiny)")
    parser.add_argument("--measurements", default=",".join(MEASUREMENTS),
                        help=f"only these, comma-separated ({', '.join(MEASUREMENTS)})")
    parser.add_argument("--engines", default="ours,reference",
                        help="engines of the http comparison; 'ours' needs no reference venv")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_DIR,
                        help=f"folder of RESULTS.md (its Server section) and {RESULTS_JSON}")
    args = parser.parse_args(argv)
    chosen = [name for name in args.measurements.split(",") if name]
    unknown = sorted(set(chosen) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(unknown)}; known: {', '.join(MEASUREMENTS)}")
    engines = [name for name in args.engines.split(",") if name]
    if not set(engines) <= {"ours", "reference"}:
        parser.error(f"unknown engine(s) in {args.engines!r}; known: ours, reference")
    sizes = SIZES[args.sizes]
    repeat = args.repeat or (1 if args.sizes == "tiny" else 3)
    started = datetime.now(timezone.utc)
    machine_info = machine()

    repetitions, failures = measure(chosen, engines, sizes, repeat)

    machine_info["load average at end"] = report.load_average()
    targets = evaluate(medians(repetitions))
    _log("\nTargets (on the medians):")
    for t in targets:
        _log(f"- {t.goal}: {t.measured} -> {'met' if t.met else 'NOT met'}")
    command = f"python -m benchmarks.server_io --sizes {args.sizes} --repeat {repeat}"
    if chosen != list(MEASUREMENTS):
        command += f" --measurements {','.join(chosen)}"
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command, "started": started.isoformat(timespec="seconds"), "machine": machine_info,
        "sizes": asdict(sizes), "engines": engines, "repetitions": repetitions,
        "medians": medians(repetitions), "targets": [asdict(t) for t in targets],
        "failures": [asdict(f) for f in failures],
    }
    (args.out / RESULTS_JSON).write_text(json.dumps(payload, indent=1) + "\n")
    results = args.out / "RESULTS.md"
    report.write_server_section(
        results, section(command, started, sizes, repetitions, machine_info, targets, failures))
    _log(f"\nwrote {args.out / RESULTS_JSON} and the Server section of {results}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
