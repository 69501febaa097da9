"""The benchmark harness runs end to end on tiny sizes and reports what it measured.

Timing is never asserted (the machine is shared and noisy); only that every scenario
ran, and that the table, RESULTS.md and the chart were produced.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import catalog
from benchmarks.engines import REFERENCE_VENV
from benchmarks.measure import Measurement
from benchmarks.report import Run, breakdown_markdown, breakdowns
from benchmarks.summary import Summary
from benchmarks.targets import RatioAtMost

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_harness(out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--sizes", "tiny", "--repeat", "1", "--out", str(out), *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_every_scenario_runs_on_our_engine_and_the_report_is_written(tmp_path: Path) -> None:
    done = run_harness(tmp_path, "--engines", "ours")

    assert done.returncode == 0, done.stderr
    results = (tmp_path / "RESULTS.md").read_text()
    assert "| scenario | size | metric | ours | reference | ours/ref |" in results
    for variant in catalog.VARIANTS:
        assert f"| {variant.title} | {variant.size_label('tiny')} | {variant.primary.label} |" in results
    assert "failed" not in results
    assert "![benchmark chart](results.png)" in results
    chart = (tmp_path / "results.png").read_bytes()
    assert chart.startswith(PNG_SIGNATURE) and len(chart) > 10_000
    assert "time per step (us)" in done.stdout and "Targets:" in done.stdout
    assert "## Where the traced loop's CPU goes" in results
    assert "traced loop, ours:" in done.stdout and "SDK floor" in done.stdout
    raw = json.loads((tmp_path / "results.json").read_text())
    assert {m["variant"] for m in raw["measurements"]} == {v.key for v in catalog.VARIANTS}

    again = tmp_path / "again"
    rerendered = run_harness(again, "--from-json", str(tmp_path / "results.json"))
    assert rerendered.returncode == 0, rerendered.stderr
    assert (again / "RESULTS.md").read_text() == results


@pytest.mark.skipif(not (REFERENCE_VENV / "bin" / "python").exists(), reason="reference venv not installed")
def test_both_engines_are_compared_with_a_ratio(tmp_path: Path) -> None:
    done = run_harness(tmp_path, "--scenarios", "loop")

    assert done.returncode == 0, done.stderr
    row = next(line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if "time per step" in line)
    ours, theirs, ratio = (cell.strip() for cell in row.strip("|").split("|")[3:6])
    assert ours != "-" and theirs != "-"
    assert float(ratio) > 0
    assert "llama-index-workflows 2." in (tmp_path / "RESULTS.md").read_text()


def test_a_scenario_that_fails_is_reported_and_makes_the_run_fail(tmp_path: Path) -> None:
    done = run_harness(tmp_path, "--engines", "ours", "--scenarios", "loop", "--timeout", "0.001")

    assert done.returncode == 1
    assert "FAILED loop / ours" in done.stdout
    assert "timed out" in (tmp_path / "RESULTS.md").read_text()


def test_unknown_scenario_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown scenario.*loop"):
        catalog.select(["lopo"])


def test_ratio_is_taken_on_medians_of_ours_over_the_reference() -> None:
    measurements = [
        Measurement("loop", "ours", rep, {"us_per_step": value}) for rep, value in enumerate([10, 30, 20])
    ] + [Measurement("loop", "llama", rep, {"us_per_step": value}) for rep, value in enumerate([400, 100, 200])]
    summary = Summary(measurements)

    assert summary.median("loop", "ours", "us_per_step") == 20
    assert summary.ratio("loop", "us_per_step") == pytest.approx(0.1)
    assert RatioAtMost("loop", "us_per_step", 0.07, "goal").evaluate(summary).met is False
    assert RatioAtMost("loop", "us_per_step", 0.1, "goal").evaluate(summary).met is True


def test_the_traced_step_is_split_into_the_step_the_sdk_floor_and_the_rest() -> None:
    def measured(variant: str, engine: str, **metrics: float) -> Measurement:
        return Measurement(variant, engine, 1, dict(metrics))

    summary = Summary(
        [
            measured("loop", "ours", cpu_us_per_step=6),
            measured("traced-loop", "ours", cpu_us_per_step=90, spans_per_step=2),
            measured("traced-loop-floor", "ours", cpu_us_per_step=70, spans_per_step=2),
            measured("traced-loop", "llama", cpu_us_per_step=600, spans_per_step=1),
        ]
    )
    run = Run("full", 1, ("ours", "llama"), datetime.datetime(2026, 1, 1))

    [ours] = breakdowns(summary, run)  # the reference has no floor measured: no breakdown

    assert (ours.floor / ours.spans, ours.beyond_sdk, ours.beyond_sdk / ours.spans) == (35, 14, 7)
    text = "\n".join(breakdown_markdown([ours], 600))
    assert "| ours | 6.00 | 90.0 | 2.00 | 70.0 | 35.0 | 14.0 | 7.00 |" in text
    assert "the SDK floor of our spans 0.117, our handler's share beyond the SDK 0.023; in all 0.150" in text


def test_an_interpreter_without_our_engine_is_refused_with_a_hint(tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named workflows' >&2\nexit 1\n")
    broken.chmod(0o755)

    done = run_harness(tmp_path, "--engines", "ours", "--ours-python", str(broken))

    assert done.returncode == 2
    assert "cannot import this project's engine: ModuleNotFoundError" in done.stderr
    assert "pip install -e ." in done.stderr
    assert not (tmp_path / "RESULTS.md").exists()


def test_the_million_runs_benchmark_runs_on_a_tiny_store_and_keeps_its_results_section(tmp_path: Path) -> None:
    from benchmarks import runs_at_scale
    from benchmarks.report import _kept_sections

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nother numbers\n")
    for _ in range(2):  # the second run replaces the section
        assert runs_at_scale.main(["--runs", "600", "--stores", "sqlite", "--repeat", "1", "--batch", "250",
                                   "--json", str(tmp_path / "scale.json"), "--results", str(results)]) == 0
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\nother numbers") and text.count("## A million runs") == 1
    report = json.loads((tmp_path / "scale.json").read_text())
    rows = report["stores"]["SQLite"]["rows"]
    assert [r["query"] for r in rows] == [c.name for c in runs_at_scale.cases(600)]
    assert all(f"| {r['query']} |" in text for r in rows)
    listed = rows[0]
    assert listed["total"] == 600 and not listed["capped"] and "deep_ms" in listed
    assert next(r for r in rows if r["query"].startswith("text: an order id"))["total"] == 1
    assert "<!-- runs-at-scale:start -->" in "\n".join(_kept_sections(results)), "python -m benchmarks keeps it"


def test_the_million_runs_benchmark_times_a_kept_store_again_without_filling_it(tmp_path: Path) -> None:
    from benchmarks import runs_at_scale

    common = ["--runs", "600", "--stores", "sqlite", "--repeat", "1", "--batch", "250", "--keep", str(tmp_path),
              "--json", str(tmp_path / "scale.json")]
    assert runs_at_scale.main(common) == 0
    first = json.loads((tmp_path / "scale.json").read_text())["stores"]["SQLite"]
    assert runs_at_scale.main([*common, "--reuse"]) == 0
    again = json.loads((tmp_path / "scale.json").read_text())["stores"]["SQLite"]
    assert again["fill_s"] == first["fill_s"], "the fill time is the first run's"
    assert "reused (`--reuse`), opened at schema version" in again["detail"]
    assert [(r["query"], r["total"]) for r in again["rows"]] == [(r["query"], r["total"]) for r in first["rows"]]
    with sqlite3.connect(tmp_path / "runs-600.db") as db:
        assert db.execute("SELECT COUNT(*) FROM handlers").fetchone() == (600,), "not filled twice"
