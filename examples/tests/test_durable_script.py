"""``durable_script.py``: a run killed mid-step is continued by a second process from its SQLite file."""

from __future__ import annotations

from pathlib import Path

from example_runner import run_example


def test_a_run_killed_mid_step_is_continued_without_rerunning_the_finished_step(tmp_path: Path) -> None:
    store = str(tmp_path / "orders.db")
    crashed = run_example("durable_script", "crash", "--store", store, expect_success=False)
    assert crashed.returncode == 9
    assert "charging 42.50 for order A-17" in crashed.stdout and "shipping, attempt 1" in crashed.stdout
    resumed = run_example("durable_script", "resume", "--store", store).stdout
    assert "charging" not in resumed, "the finished step ran again"
    assert "shipping, attempt 2" in resumed
    assert "order A-17 charged 42.50 and shipped" in resumed
