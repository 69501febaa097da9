"""A TCP proxy on loopback that delays every chunk by a fixed latency in each direction.

``python -m benchmarks.delay_proxy HOST:PORT --delay-ms 1`` listens on a free loopback
port, prints it on one line, and forwards each connection to ``HOST:PORT`` until it is
terminated. A chunk read at time t is written on at t + delay; chunks keep their order,
and a chunk never waits for the one before it to be delivered, so the link adds latency
and not a bandwidth limit (a database in another zone, rather than a slow one).
benchmarks/server_io.py puts it between the server and PostgreSQL. At ``--delay-ms 0``
the bytes go through the same code with no wait: the proxy's own cost is in both sides
of the comparison.

The delay is an event-loop timer: it is at least the delay asked for, and the loop's
wake-up adds a little (tens of microseconds idle, more on a busy machine);
``round_trip_ms`` measures what a round trip through the proxy actually costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from typing import Any

_CHUNK = 1 << 16


async def _together(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run ``jobs`` until all end, or one fails (a side went away): then the others are cancelled."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def receive() -> None:
        while chunk := await reader.read(_CHUNK):
            queue.put_nowait((loop.time() + delay, chunk))
        queue.put_nowait(None)

    async def send() -> None:
        while (item := await queue.get()) is not None:
            due, chunk = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    await _together(receive(), send())


async def _connection(host: str, port: int, delay: float,
                      client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    try:
        await _together(_forward(client_reader, server_writer, delay), _forward(server_reader, client_writer, delay))
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


async def start(target: str, delay_ms: float) -> asyncio.Server:
    """The proxy to ``target`` (``host:port``), listening on a free loopback port."""
    host, port = target.rsplit(":", 1)
    delay = delay_ms / 1000

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _connection(host, int(port), delay, reader, writer)

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def serve(target: str, delay_ms: float) -> None:
    server = await start(target, delay_ms)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def delaying(target: str, delay_ms: float) -> Iterator[str]:
    """Run the proxy to ``target`` (``host:port``) in a process of its own; yield its ``127.0.0.1:port``."""
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.delay_proxy", target, "--delay-ms", str(delay_ms)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the delaying proxy did not start (exit code {process.poll()})")
        yield f"127.0.0.1:{line}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def round_trip_ms(database_url: str, count: int = 200) -> float:
    """Median milliseconds of ``SELECT 1`` on one connection to ``database_url`` (psycopg, autocommit)."""
    import psycopg

    times = []
    with psycopg.connect(database_url, autocommit=True) as connection:
        for _ in range(count):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delay_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("target", help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="latency added in each direction (default 1)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.target, args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
