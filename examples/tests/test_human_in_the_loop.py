"""``human_in_the_loop.py``: a run waits for approval, is saved, and a second process finishes it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from example_runner import parse_trees, run_example


def trace_header(output: str) -> tuple[str, str]:
    """The (trace id, session id) of the one trace an output shows."""
    [header] = re.findall(r"^trace ([0-9a-f]{32})  \(\d+ spans, session ([0-9a-f]+)", output, re.MULTILINE)
    return header


def test_a_run_saved_while_waiting_is_finished_by_a_second_process(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"

    submitted = run_example("human_in_the_loop", "submit", "--file", str(saved)).stdout

    assert "The workflow asks: Approve 240.00 EUR for 'team dinner in Lyon'?" in submitted
    snapshot = json.loads(saved.read_text())
    assert snapshot["is_running"] is True
    assert "traceparent" in snapshot["trace_context"]

    answered = run_example("human_in_the_loop", "approve", "--as", "Alice", "--file", str(saved), timeout=60).stdout

    assert "Expense 'team dinner in Lyon' (240.00 EUR) approved by Alice." in answered


def test_both_processes_record_one_trace_in_one_session_with_the_wait(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    submitted = run_example("human_in_the_loop", "submit", "--file", str(saved)).stdout
    answered = run_example("human_in_the_loop", "reject", "--as", "Bob", "--file", str(saved), timeout=60).stdout

    assert trace_header(submitted) == trace_header(answered)
    assert "continues a trace started elsewhere" in answered
    [first] = parse_trees(submitted, "ExpenseApproval.run")
    [decide] = first.find("ExpenseApproval.decide")
    assert decide.find("wait Decision")
    assert decide.find("emit InputRequiredEvent")
    [second] = parse_trees(answered, "ExpenseApproval.run")
    assert second.text.endswith("completed")
    steps = [node.text.split("  ")[0] for node in second.children if node.text.startswith("ExpenseApproval.")]
    assert steps == ["ExpenseApproval.decide"]  # the waiting step runs again; check is not redone
    assert "rejected by Bob." in answered


def test_answering_before_submitting_says_what_to_run_first(tmp_path: Path) -> None:
    result = run_example(
        "human_in_the_loop", "approve", "--file", str(tmp_path / "missing.json"), expect_success=False
    )

    assert result.returncode == 2
    assert "run `submit` first" in result.stderr
