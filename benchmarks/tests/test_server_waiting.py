"""The waiting-runs benchmark runs end to end on a few runs (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.server_waiting import measure


def test_the_waiting_runs_benchmark_measures_a_few_runs_and_answers_them(tmp_path: Path) -> None:
    results = measure(runs=5, concurrency=5, rest_seconds=0.2, folder=tmp_path)
    assert results["runs"] == 5
    assert results["tasks_at_rest_beyond_idle"] == 0  # every waiting run was let go of
    # Memory per run is noise at this size (it may even shrink): only that it was read.
    assert isinstance(results["python_bytes_per_waiting_run"], float)
    assert results["cpu_at_rest_ms_per_s"] >= 0
