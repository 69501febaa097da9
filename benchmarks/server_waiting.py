"""``python -m benchmarks.server_waiting``: what a run waiting for a human costs the server at rest.

N runs of a workflow whose step returns an ``InputRequiredEvent`` (the usual human-wait
pattern) are started over HTTP on one server (SQLite store), then left waiting. Reported,
from the server process itself (``server_apps/waiting_app.py``): Python memory per waiting
run beyond the store (``tracemalloc``: SQLite's own pages are not Python's), the resident
memory per run, the asyncio tasks left, and the CPU the process uses at rest. Issue 24's
targets: at most 2 KB per run, 0 tasks beyond the server's own, CPU at rest about 0.
Then every run is answered (each answer must be accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.server import serving

RESULTS = Path(__file__).parent / "server_waiting_results.json"


async def _start_all(url: str, runs: int, concurrency: int, prefix: str = "wait") -> list[str]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> str:
            handler_id = f"{prefix}-{index}"
            body = {"handler_id": handler_id, "start_event": {"item": f"i{index}"}}
            async with gate:
                for attempt in range(3):
                    try:
                        response = await client.post("/workflows/approval/run-nowait", json=body)
                    except httpx.TransportError:
                        # A kept-alive connection the server closed meanwhile: send again (the id makes it once).
                        if attempt == 2:
                            raise
                        continue
                    if response.status_code == 409 and attempt:
                        return handler_id  # the first try was taken
                    response.raise_for_status()
                    return handler_id
            raise AssertionError("unreachable")

        return list(await asyncio.gather(*(one(i) for i in range(runs))))


async def _answer_all(url: str, ids: list[str], concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(handler_id: str) -> None:
            async with gate:
                answer = {"event": {"type": "HumanResponseEvent", "value": {"response": "yes"}}}
                (await client.post(f"/events/{handler_id}", json=answer)).raise_for_status()

        await asyncio.gather(*(one(h) for h in ids))


def _wait_until(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure(runs: int, concurrency: int, rest_seconds: float, folder: Path) -> dict[str, float]:
    with serving("ours", folder, app="waiting_app.py") as served:
        url = served.url

        def probe(collect: bool = True) -> dict[str, float]:
            params = {} if collect else {"collect": "false"}
            return dict(httpx.get(url + "/bench/probe", params=params, timeout=30).json())

        def replica() -> dict[str, object]:
            return dict(httpx.get(url + "/api/replica", timeout=30).json())

        idle = probe(collect=False)
        time.sleep(rest_seconds)
        idle_after = probe(collect=False)  # what an idle server uses, to set the runs' share against
        asyncio.run(_start_all(url, 1, 1, prefix="warm-up"))  # imports, the first run's code paths
        _wait_until("the warm-up run to be let go of", lambda: replica()["live"] == [], 60)
        before = probe()
        started = time.perf_counter()
        ids = asyncio.run(_start_all(url, runs, concurrency))
        _wait_until("every run to be let go of", lambda: replica()["live"] == [], 600)
        start_seconds = time.perf_counter() - started
        after = probe()
        resting = probe(collect=False)
        time.sleep(rest_seconds)
        rested = probe(collect=False)
        asyncio.run(_answer_all(url, ids, concurrency))  # each answer must be accepted
    return {
        "runs": runs,
        "start_seconds": round(start_seconds, 2),
        "python_bytes_per_waiting_run": round((after["python_bytes"] - before["python_bytes"]) / runs, 1),
        "rss_bytes_per_waiting_run": round((after["rss_bytes"] - before["rss_bytes"]) / runs, 1),
        "tasks_at_rest_beyond_idle": after["tasks"] - before["tasks"],
        "cpu_at_rest_ms_per_s": round((rested["cpu_seconds"] - resting["cpu_seconds"]) / rest_seconds * 1000, 2),
        "cpu_idle_server_ms_per_s": round((idle_after["cpu_seconds"] - idle["cpu_seconds"]) / rest_seconds * 1000, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_waiting", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rest-seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args.runs, args.concurrency, args.rest_seconds, Path(tmp))
    for key, value in results.items():
        print(f"{key}: {value}")
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
