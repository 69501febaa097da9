"""Instruction counts per step (``python -m benchmarks.instructions``): what is read from
cachegrind, the arithmetic that cancels start-up, and a real count where valgrind exists."""

from __future__ import annotations

import datetime
import gc
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.catalog import SCENARIO_DIR, VARIANTS
from benchmarks.engines import ours
from benchmarks.instructions import Count, count, per_step, section, table, total_instructions
from benchmarks.summary import Summary

REPO = Path(__file__).resolve().parents[2]

CACHEGRIND_SUMMARY = """==4242== Cachegrind, a high-precision tracing profiler
==4242== Command: python loop.py --engine ours --n 300
==4242==
==4242== I   refs:      1,234,567,890
"""


def test_the_total_is_read_from_cachegrinds_summary() -> None:
    assert total_instructions(CACHEGRIND_SUMMARY) == 1_234_567_890


def test_output_without_a_summary_is_refused_with_what_went_wrong() -> None:
    with pytest.raises(ValueError, match="no 'I refs' line"):
        total_instructions("==1== Command: python\n")


def test_start_up_cancels_out_of_the_count_per_step() -> None:
    start_up = 90_000_000
    assert per_step((300, start_up + 300 * 700), (1300, start_up + 1300 * 700)) == 700


def test_sizes_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ValueError, match="larger"):
        per_step((1300, 2), (300, 1))


def test_the_report_splits_each_traced_step_and_gives_the_ratio() -> None:
    counts = [
        Count("ours", "loop", 70_000),
        Count("ours", "traced-loop", 700_000),
        Count("ours", "traced-loop-floor", 480_000),
        Count("llama", "loop", 2_000_000),
        Count("llama", "traced-loop", 3_500_000),
        Count("llama", "traced-loop-floor", 320_000),
    ]
    text = table(counts)
    assert "| ours | 70k | 700k | 480k | 150k |" in text
    assert "| llama | 2,000k | 3,500k | 320k | 1,180k |" in text
    assert "in instructions: 0.200" in text


def test_a_missing_valgrind_is_reported_with_how_to_install_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", "--engines", "ours"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(tmp_path)},  # nothing on it: no valgrind
        timeout=60,
    )
    assert done.returncode == 2
    assert "apt install valgrind" in done.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_real_loop_step_is_counted_under_cachegrind() -> None:
    [loop] = [v for v in VARIANTS if v.key == "loop"]
    small, large = count(ours(), loop, 20, timeout=600), count(ours(), loop, 120, timeout=600)
    # An untraced step of ours is tens of thousands of instructions; start-up is far more.
    assert small > 10_000_000
    assert 5_000 < per_step((20, small), (120, large)) < 1_000_000


def test_no_gc_keeps_the_collector_off_while_timing_and_on_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SCENARIO_DIR))
    monkeypatch.setattr(sys, "argv", ["loop.py", "--engine", "ours", "--no-gc"])
    import _common  # type: ignore[import-not-found]  # the scenarios folder, put on the path above

    assert _common.parse_args("loop", n=10).no_gc
    with _common.timed():
        assert not gc.isenabled()
    assert gc.isenabled()
    monkeypatch.setattr(sys, "argv", ["loop.py", "--engine", "ours"])
    _common.parse_args("loop", n=10)
    with _common.timed():
        assert gc.isenabled()


def test_the_section_is_written_once_and_kept_by_the_engine_comparison(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    counts = [Count("ours", "loop", 70_000), Count("ours", "traced-loop", 700_000)]
    started = datetime.datetime(2026, 12, 7, 23, 50, tzinfo=datetime.timezone.utc)
    report.write_section(results, report.INSTRUCTIONS, section(counts, started, "first", {"cpu": "test cpu"}))
    report.write_section(results, report.INSTRUCTIONS, section(counts, started, "second", {"cpu": "test cpu"}))
    text = results.read_text()
    assert text.count("## Instructions per loop step") == 1
    assert "`second`" in text and "`first`" not in text and "2026-12-07 23:50 UTC" in text

    run = report.Run(size="tiny", repeat=1, engines=("ours",), started=started)
    report.write_markdown(results, Summary([]), [], run, [], None, {"cpu": "test"})
    text = results.read_text()
    assert text.startswith("# Benchmark results")
    assert "| ours | 70k | 700k | - | - |" in text and text.count(report.INSTRUCTIONS[0]) == 1
