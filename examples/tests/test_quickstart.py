"""``quickstart.py``: the smallest workflow with typed state, its results and its traces."""

from __future__ import annotations

import re

from example_runner import parse_trees, run_example


def test_quickstart_keeps_state_across_two_runs_of_one_context() -> None:
    output = run_example("quickstart").stdout

    assert "Result: Processed 1 times, data length: 13" in output
    assert "Result: Processed 2 times, data length: 26" in output


def test_quickstart_prints_each_run_as_a_tree_in_one_session() -> None:
    output = run_example("quickstart").stdout

    first, second = parse_trees(output, "MyWorkflow.run")
    sessions = [re.search(r"session (\w+)", run.text).group(1) for run in (first, second)]  # type: ignore[union-attr]
    assert sessions[0] == sessions[1]
    assert "completed" in first.text
    assert [step.text.split()[0] for step in first.children if "←" in step.text] == ["start", "process"]
    [start] = second.find("start ")
    assert [child.text for child in start.find("state.edit")] == ["state.edit  /num_runs = 2"]
