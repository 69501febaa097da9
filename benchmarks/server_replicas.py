"""``python -m benchmarks.server_replicas``: replicas of the server on one PostgreSQL.

1. Throughput: runs per second of a three-step workflow whose steps wait on I/O (50 ms
   each), with 1, 2 and 3 replicas on one database. Each replica holds at most
   ``--max-runs`` runs at once (``WORKFLOWS_SERVER_MAX_RUNS``); the client keeps
   ``--concurrency`` requests (``POST /workflows/io/run``, which waits for the result)
   in flight, spread over the replicas. Runs beyond a replica's room wait in the
   database's queue for whichever replica has room.
2. Takeover: 2 replicas; ``--held`` runs are inside a step on replica A when A is
   killed (SIGKILL); reported: seconds from the kill until replica B holds all of them,
   and the lease (``WORKFLOWS_SERVER_LEASE_SECONDS``) it is bounded by.

A throwaway PostgreSQL cluster is started for the run (Debian's postgresql, as the tests
use). Results: ``benchmarks/server_replicas_results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.server import LOG

APPS = Path(__file__).parent / "server_apps"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.processes import free_port, wait_until_answering  # noqa: E402
from support.postgres import create_database, throwaway_cluster  # noqa: E402



def _replica(store: str, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOWS_", "OTEL_"))}
    environment.update({"WORKFLOWS_SERVER_LOG_LEVEL": "warning", "OTEL_SDK_DISABLED": "true", **env})
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows_server.cli", str(APPS / "replica_app.py"), "--port", str(port),
         "--store", store],
        env=environment, stdout=subprocess.DEVNULL, stderr=LOG,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(process, url + "/health", timeout=60, what="a replica")
    return url, process


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def _drive(urls: list[str], runs: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                url = urls[index % len(urls)]
                response = await client.post(f"{url}/workflows/io/run", json={"start_event": {"n": index}})
                response.raise_for_status()
                result = response.json()["result"]["value"]["result"]
                if result != index * 2:
                    raise RuntimeError(f"run {index} answered {result!r}")

        await asyncio.gather(*(one(-1 - i) for i in range(len(urls))))  # warm up each replica
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(runs)))
        return time.perf_counter() - started


def throughput(cluster: str, replicas: int, runs: int, concurrency: int, max_runs: int) -> float:
    store = create_database(cluster)
    started = [_replica(store, {"WORKFLOWS_SERVER_MAX_RUNS": str(max_runs)}) for _ in range(replicas)]
    try:
        seconds = asyncio.run(_drive([url for url, _ in started], runs, concurrency))
    finally:
        _stop([process for _, process in started])
    return runs / seconds


def takeover(cluster: str, held: int, lease: float, folder: Path) -> float:
    store = create_database(cluster)
    env = {"WORKFLOWS_SERVER_LEASE_SECONDS": str(lease), "WORKFLOWS_SERVER_POLL_SECONDS": "0.1"}
    a_url, a = _replica(store, env)
    processes = [a]
    try:
        gate = folder / "gate"
        ids = []
        for _ in range(held):
            response = httpx.post(f"{a_url}/workflows/hold/run-nowait", json={"start_event": {"gate": str(gate)}})
            ids.append(response.json()["handler_id"])
        deadline = time.monotonic() + 30
        while len(httpx.get(f"{a_url}/api/replica").json()["held"]) < held:
            if time.monotonic() > deadline:
                raise RuntimeError("replica A never held the runs")
            time.sleep(0.02)
        b_url, b = _replica(store, env)
        processes.append(b)
        os.kill(a.pid, signal.SIGKILL)
        killed = time.perf_counter()
        a.wait()
        while len(httpx.get(f"{b_url}/api/replica").json()["held"]) < held:
            if time.perf_counter() - killed > 10 * lease + 30:
                raise RuntimeError("replica B never took the runs over")
            time.sleep(0.01)
        seconds = time.perf_counter() - killed
        gate.touch()
        for handler_id in ids:
            while httpx.get(f"{b_url}/handlers/{handler_id}").json()["status"] != "completed":
                time.sleep(0.02)
        return seconds
    finally:
        _stop(processes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_replicas", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--max-runs", type=int, default=30, help="WORKFLOWS_SERVER_MAX_RUNS of each replica")
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--held", type=int, default=20, help="runs on the replica killed in the takeover measurement")
    parser.add_argument("--lease", type=float, default=5.0, help="WORKFLOWS_SERVER_LEASE_SECONDS for the takeover")
    args = parser.parse_args(argv)
    results: dict[str, object] = {
        "runs": args.runs, "concurrency": args.concurrency, "max_runs_per_replica": args.max_runs,
        "step_wait_ms": 50, "steps": 3, "cpus": os.cpu_count(),
    }
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        for count in (int(n) for n in args.replicas.split(",")):
            rate = throughput(cluster, count, args.runs, args.concurrency, args.max_runs)
            results[f"runs_per_second_{count}_replicas"] = round(rate, 1)
            print(f"{count} replica(s): {rate:.1f} runs/s", flush=True)
        seconds = takeover(cluster, args.held, args.lease, Path(tmp))
        results.update({"takeover_seconds": round(seconds, 2), "takeover_lease_seconds": args.lease,
                        "takeover_runs": args.held})
        print(f"takeover of {args.held} runs from a killed replica: {seconds:.2f} s (lease {args.lease} s)")
    (Path(__file__).parent / "server_replicas_results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
