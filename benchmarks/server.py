"""``python -m benchmarks.server``: the workflow server against llama-agents-server, and the durable cost per step.

1. HTTP: 400 runs of a two-step workflow (``POST /workflows/two/run``, which waits for
   the result), 20 at a time, against this project's server (SQLite store) and against
   llama-agents-server 0.8.0 on llama-index-workflows 2.26.1 with its SQLite store
   (installed in ``benchmarks/.venv-llama-server`` on first use). Each server is its
   own process on loopback; the clients share one httpx client. Reported: seconds per
   engine and the ratio ours/reference (target 0.05 or less; ``benchmarks.server_io`` checks it
   with repetitions, next to the server's other targets).
2. Durable cost per step: a 10-step chain run in-process on the default runtime and on
   ``DurableRuntime`` with a SQLite file; reported: microseconds per step each, and the
   difference (what durability costs per step).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.engines import ensure_reference_server

APPS = Path(__file__).parent / "server_apps"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.processes import free_port, wait_until_answering  # noqa: E402

LOG = open(os.environ.get("WORKFLOWS_BENCH_LOG", os.devnull), "ab")  # the servers' output (for a failing run)


async def _drive(url: str, runs: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                response = await client.post("/workflows/two/run", json={"start_event": {"n": index}})
                response.raise_for_status()
                result = response.json()["result"]["value"]["result"]
                if result != index * 2:
                    raise RuntimeError(f"run {index} answered {result!r}")

        await one(-1)  # warm up (imports, first connection)
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(runs)))
        return time.perf_counter() - started


@dataclass(frozen=True)
class Served:
    """A server process started by ``serving``."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """The process's CPU time so far, user and system, all threads (from /proc: Linux only)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_cpu_seconds() -> float:
    return time.process_time()


@dataclass(frozen=True)
class HttpMeasure:
    """One side of the HTTP comparison: the wall time of the runs, and the CPU each process spent on them.

    The client's CPU is a floor under ``seconds`` for any server: one process, one event loop.
    """

    seconds: float
    server_cpu_seconds: float
    client_cpu_seconds: float


@contextlib.contextmanager
def serving(engine: str, folder: Path, store: str | None = None, app: str = "ours_app.py") -> Iterator[Served]:
    """Start ``engine``'s server (``ours``, ``reference`` or ``bare``) on a free loopback port; yield it once healthy.

    Ours serves ``server_apps/<app>`` and keeps its runs in ``store`` (default: a SQLite file
    in ``folder``); the reference always in a SQLite file in ``folder``; ``bare`` answers
    ``/health`` alone (``server_apps/bare_health.py``). The server is stopped on the way out.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOWS_", "OTEL_"))}
    if engine == "ours":
        command = [sys.executable, "-m", "workflows_server.cli", str(APPS / app), "--port", str(port),
                   "--store", store or f"sqlite:///{folder / 'ours.db'}"]
        env["WORKFLOWS_SERVER_LOG_LEVEL"] = "warning"
    elif engine == "bare":
        command = [sys.executable, str(APPS / "bare_health.py"), str(port)]
    else:
        python = ensure_reference_server(log=lambda m: print(m, file=sys.stderr))
        command = [str(python), str(APPS / "reference_app.py"), str(port), str(folder / "reference.db")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=LOG)
    try:
        wait_until_answering(process, url + "/health", timeout=60, what=f"the {engine} server")
        yield Served(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)


def http_benchmark(engine: str, runs: int, concurrency: int, folder: Path) -> HttpMeasure:
    with serving(engine, folder) as served:
        asyncio.run(_drive(served.url, 1, 1))  # imports and first code paths, outside the CPU counts
        server_cpu, client_cpu = served.cpu_seconds(), _client_cpu_seconds()
        seconds = asyncio.run(_drive(served.url, runs, concurrency))
        return HttpMeasure(seconds, served.cpu_seconds() - server_cpu, _client_cpu_seconds() - client_cpu)


def durable_step_cost(runs: int, folder: Path, concurrency: int = 50) -> dict[str, float]:
    """Microseconds per step of a 10-step chain, in memory and on a SQLite DurableRuntime: wall time, and
    the process's CPU time (all threads: the store's thread too), which a busy machine inflates less.

    First one run at a time (each hop waits for its own commit), then ``concurrency`` runs at a
    time (``together_*``: concurrent runs share their commits), each side on a fresh store."""
    code = f"""
import asyncio, json, sys, time
sys.path.insert(0, {str(APPS)!r})
from chain import Chain
from workflows_server import DurableRuntime

async def measure(workflow, n, at_once=1):
    gate = asyncio.Semaphore(at_once)

    async def one():
        async with gate:
            await workflow.run()

    await asyncio.gather(*(one() for _ in range(at_once)))
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(n)))
    return (time.perf_counter() - started) / (n * 10) * 1e6, (time.process_time() - cpu) / (n * 10) * 1e6

def durable(name):
    return Chain(timeout=None, runtime=DurableRuntime("sqlite:///" + {str(folder)!r} + "/" + name + ".db"))

async def main():
    found = {{}}
    for prefix, at_once in (("", 1), ("together_", {concurrency})):
        memory, memory_cpu = await measure(Chain(timeout=None), {runs}, at_once)
        sqlite, sqlite_cpu = await measure(durable(prefix + "steps"), {runs}, at_once)
        found.update({{prefix + "memory_us_per_step": memory, prefix + "sqlite_us_per_step": sqlite,
                      prefix + "memory_cpu_us_per_step": memory_cpu, prefix + "sqlite_cpu_us_per_step": sqlite_cpu}})
    print(json.dumps(found))

asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOWS_", "OTEL_"))}
    env["OTEL_SDK_DISABLED"] = "true"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def durable_hop_floor(hops: int, folder: Path) -> dict[str, float]:
    """Microseconds of the least a durable hop can cost as the server stores it: a hand-off to a store
    thread and back (``Lane``), around one transaction of one journal row and one stream row on the
    store's own schema (SQLite, WAL, synchronous=NORMAL); nothing encoded, nothing else written."""
    code = f"""
import asyncio, json, sqlite3, sys, time
from workflows_server.store.lanes import Lane
from workflows_server.store.sqlite import SqliteStore

path = {str(folder / "floor.db")!r}
SqliteStore(path).close()  # the store's schema
db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
record = json.dumps({{"kind": "StepFinished", "step": "step_3", "event": {{"n": 3}}}})
envelope = json.dumps({{"type": "Step", "value": {{"n": 3}}}})
sequence = iter(range(10**9))

def hop():
    db.execute("BEGIN")
    db.execute("INSERT INTO journal (handler_id, epoch, at, record) VALUES (?, 0, '2026-01-01T00:00:00', ?)",
               ("h" * 32, record))
    db.execute("INSERT INTO stream (handler_id, sequence, at, envelope) VALUES (?, ?, '2026-01-01T00:00:00', ?)",
               ("h" * 32, next(sequence), envelope))
    db.execute("COMMIT")

async def main():
    lane = Lane("floor")
    for _ in range(200):
        await lane.run(hop)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range({hops}):
        await lane.run(hop)
    print(json.dumps({{"us_per_hop": (time.perf_counter() - started) / {hops} * 1e6,
                      "cpu_us_per_hop": (time.process_time() - cpu) / {hops} * 1e6}}))

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--step-runs", type=int, default=300, help="runs of the 10-step chain per runtime")
    parser.add_argument("--engines", default="ours,reference")
    args = parser.parse_args(argv)
    results: dict[str, object] = {"runs": args.runs, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for engine in args.engines.split(","):
            measured = http_benchmark(engine, args.runs, args.concurrency, folder)
            results[f"{engine}_seconds"] = round(measured.seconds, 3)
            print(f"{engine}: {args.runs} runs, {args.concurrency} at a time: {measured.seconds:.2f} s (CPU: server "
                  f"{measured.server_cpu_seconds:.2f} s, client {measured.client_cpu_seconds:.2f} s)", flush=True)
        if "ours_seconds" in results and "reference_seconds" in results:
            ratio = float(results["ours_seconds"]) / float(results["reference_seconds"])  # type: ignore[arg-type]
            results["ratio"] = round(ratio, 3)
            print(f"ratio ours/reference: {ratio:.3f} (target 0.05 or less)")
        cost = durable_step_cost(args.step_runs, folder)
        results.update({k: round(v, 1) for k, v in cost.items()})
        print(f"per step: in memory {cost['memory_us_per_step']:.1f} us, durable on SQLite "
              f"{cost['sqlite_us_per_step']:.1f} us (+{cost['sqlite_us_per_step'] - cost['memory_us_per_step']:.1f} us)")
    (Path(__file__).parent / "server_results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
