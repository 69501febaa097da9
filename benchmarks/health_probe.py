"""``python -m benchmarks.health_probe URL``: how long ``GET URL/health`` takes, sampled until told to stop.

A process of its own, so that the load the harness drives at the same time does not
delay the probe's own clock (two programs on one event loop, or under one GIL, would).
It keeps one HTTP/1.1 connection open, sends a request every ``--interval-ms``, and
prints ``ready`` once connected. It stops after ``--samples`` answers, or when a
line arrives on its standard input, and then prints the latencies in milliseconds as
one JSON list.
"""

from __future__ import annotations

import argparse
import http.client
import json
import select
import sys
import time
from urllib.parse import urlsplit


def _health(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/health")
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"/health answered {response.status}")


def sample(url: str, interval: float, samples: int | None) -> list[float]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
    latencies: list[float] = []
    try:
        _health(connection)  # opens the connection: not a sample
        print("ready", flush=True)
        while samples is None or len(latencies) < samples:
            started = time.perf_counter()
            _health(connection)
            latencies.append((time.perf_counter() - started) * 1000)
            # The pause between requests, cut short by a line on stdin (the harness's "stop").
            if select.select([sys.stdin], [], [], interval)[0]:
                break
    finally:
        connection.close()
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.health_probe", description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--interval-ms", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=None, help="stop after this many answers")
    args = parser.parse_args(argv)
    print(json.dumps(sample(args.url, args.interval_ms / 1000, args.samples)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
