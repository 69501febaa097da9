"""``python -m benchmarks.server_io`` runs end to end on tiny sizes and reports what it measured.

Timing is never asserted (the machine is shared and noisy): only that each measurement
ran, that the delaying proxy carries bytes intact, and that the Server section of
RESULTS.md is written, replaced, and kept when the engine comparison rewrites the file.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report, server_io
from benchmarks.delay_proxy import start
from benchmarks.summary import Summary

REPO = Path(__file__).resolve().parents[2]
POSTGRES = shutil.which("pg_ctl") is not None or bool(list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))


@pytest.mark.skipif(not POSTGRES, reason="PostgreSQL is not installed (scripts/setup.sh --test installs it)")
def test_every_measurement_runs_on_tiny_sizes_and_the_server_section_is_written(tmp_path: Path) -> None:
    (tmp_path / "RESULTS.md").write_text("# Benchmark results\n\nthe engine comparison\n")

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.server_io", "--sizes", "tiny", "--engines", "ours", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    raw = json.loads((tmp_path / server_io.RESULTS_JSON).read_text())
    assert raw["failures"] == []
    (numbers,) = raw["repetitions"]
    for key in ("distant_near_runs_per_second", "distant_far_runs_per_second", "distant_far_round_trip_ms",
                "http_ours_seconds", "http_ours_client_cpu_seconds", "step_store_us_per_step",
                "step_store_cpu_us_per_step", "step_floor_us_per_hop",
                "health_idle_p99_ms", "health_loaded_p99_ms", "health_floor_loaded_p99_ms"):
        assert numbers[key] > 0, key
    assert numbers["http_ours_server_cpu_seconds"] >= 0  # counted in clock ticks: four runs may take less than one
    assert numbers["health_idle_samples"] == server_io.SIZES["tiny"].idle_samples
    assert {"python", "cpu", "load average at end"} <= raw["machine"].keys()
    assert len(raw["targets"]) == 3  # the reference server was not run: no HTTP ratio

    results = (tmp_path / "RESULTS.md").read_text()
    assert results.startswith("# Benchmark results\n\nthe engine comparison\n")
    assert results.count(report.SERVER_START) == 1 and results.rstrip().endswith(report.SERVER_END)
    assert "## Server" in results and "| health: /health p99, idle (ms) |" in results
    assert "a bare server's /health beside the same load" in results
    assert "throughput kept >= 0.6" in results and "Targets (on the medians):" in done.stdout


def test_an_unknown_measurement_is_refused_with_the_known_names() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.server_io", "--measurements", "helth"],
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=60)

    assert done.returncode == 2
    assert "unknown measurement(s) helth; known: distant, http, step, health" in done.stderr


def test_the_delaying_proxy_carries_bytes_both_ways_in_order() -> None:
    payload = b"".join(bytes([i % 251]) * 3000 for i in range(100))

    async def through_the_proxy() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        proxy = await start(f"127.0.0.1:{upstream.sockets[0].getsockname()[1]}", 1.0)
        async with upstream, proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.sockets[0].getsockname()[1])
            writer.write(payload)
            writer.write_eof()
            received = await asyncio.wait_for(reader.read(-1), 30)
            writer.close()
            return received

    assert asyncio.run(through_the_proxy()) == payload


def test_the_server_section_is_replaced_in_place_and_kept_by_the_engine_comparison(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    report.write_server_section(results, "## Server\n\nfirst\n")
    report.write_server_section(results, "## Server\n\nsecond\n")
    assert "first" not in results.read_text() and results.read_text().count("## Server") == 1

    run = report.Run(size="tiny", repeat=1, engines=("ours",), started=datetime.datetime.now(datetime.timezone.utc))
    report.write_markdown(results, Summary([]), [], run, [], None, {"cpu": "test"})

    text = results.read_text()
    assert text.startswith("# Benchmark results")
    assert text.rstrip().endswith(f"## Server\n\nsecond\n{report.SERVER_END}")
