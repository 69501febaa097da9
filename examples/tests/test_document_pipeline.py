"""``document_pipeline.py``: fan-out, parallel workers, retries, fan-in, progress."""

from __future__ import annotations

import re

import pytest
from example_runner import parse_trees, run_example

DOCUMENTS = [
    "annual-report.txt",
    "meeting-notes.md",
    "press-release.txt",
    "scan-contract.pdf",
    "scan-invoice-0042.png",
]


@pytest.fixture(scope="module")
def output() -> str:
    return run_example("document_pipeline").stdout


def test_progress_reaches_every_document_once_in_order(output: str) -> None:
    progress = re.findall(r"^\[([#.]+)\] (\d)/5  (\S+)", output, re.MULTILINE)

    assert [int(done) for _, done, _ in progress] == [1, 2, 3, 4, 5]
    assert sorted(name for _, _, name in progress) == DOCUMENTS
    assert progress[-1][0] == "#" * 20


def test_scanned_documents_succeed_on_their_second_attempt(output: str) -> None:
    retried = re.findall(r"(\S+) \(after 2 attempts\)", output)
    assert sorted(retried) == ["scan-contract.pdf", "scan-invoice-0042.png"]

    [run] = parse_trees(output, "DocumentPipeline.run")
    failed = run.find("summarize ")
    assert sum("retrying" in node.text and "ConnectionError" in node.text for node in failed) == 2
    assert len(run.find("summarize (attempt 2)")) == 2


def test_the_report_is_written_once_every_summary_is_in(output: str) -> None:
    report = output.split("Report:\n", 1)[1].split("\n\n", 1)[0].splitlines()

    assert [line.split(" ")[1] for line in report] == DOCUMENTS
    [run] = parse_trees(output, "DocumentPipeline.run")
    reports = run.find("write_report")
    assert len(reports) == 5  # one per summary
    completing = [node for node in reports if node.find("emit StopEvent")]
    assert len(completing) == 1 and completing[0] is reports[-1]
