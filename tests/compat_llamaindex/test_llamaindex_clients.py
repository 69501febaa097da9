"""Runs the scenarios (``scenarios/scenario_*.py``) in the compat venv; one outer test per scenario.

The scenarios run together in one pytest process of the venv (importing llama-index-core
once), and each test here passes or fails with its scenario, showing the scenario's
failure text.
"""

from __future__ import annotations

import ast
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support.phoenix import phoenix_command

SCENARIOS = Path(__file__).parent / "scenarios"
INNER_TIMEOUT = 600


def _scenario_ids() -> list[str]:
    ids = []
    for path in sorted(SCENARIOS.glob("scenario_*.py")):
        tree = ast.parse(path.read_text())
        ids += [
            f"{path.stem}::{node.name}"
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
        ]
    return ids


@pytest.fixture(scope="session")
def scenario_outcomes(
    compat_venv_python: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, str | None]:
    """``{scenario id: None if it passed, else its failure text}``, from one run of the scenarios."""
    report = tmp_path_factory.mktemp("compat") / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if phoenix_command() is not None:  # scenario_tracing reads the trace back from a real Phoenix
        env["WORKFLOWS_TEST_PHOENIX_URL"] = request.getfixturevalue("phoenix_server").base_url
    proc = subprocess.run(
        [
            str(compat_venv_python), "-m", "pytest", str(SCENARIOS), "-q", "-p", "no:cacheprovider",
            "-c", str(SCENARIOS / "pytest.ini"), "--rootdir", str(SCENARIOS), "--confcutdir", str(SCENARIOS),
            f"--junitxml={report}", "-o", "junit_family=xunit1",
        ],
        # In a scratch folder: the drawing functions (pyvis) write their assets into the working directory.
        capture_output=True, text=True, timeout=INNER_TIMEOUT, cwd=report.parent, env=env, check=False,
    )
    if not report.exists():
        pytest.fail(f"the scenarios did not run (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    outcomes: dict[str, str | None] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        text = None if problem is None else f"{problem.tag}: {problem.get('message', '')}\n{problem.text or ''}"
        outcomes[f"{module}::{case.get('name')}"] = text
    return outcomes


@pytest.mark.parametrize("scenario", _scenario_ids())
def test_scenario(scenario: str, scenario_outcomes: dict[str, str | None]):
    assert scenario in scenario_outcomes, f"{scenario} did not run; ran: {sorted(scenario_outcomes)}"
    problem = scenario_outcomes[scenario]
    if problem is not None and problem.startswith("skipped:"):
        pytest.skip(problem)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
