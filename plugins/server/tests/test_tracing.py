"""Requests and runs in one trace; a run let go of and continued keeps its trace; run metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APPS = Path(__file__).parent / "apps"


def test_a_request_parents_its_run_and_a_continued_run_stays_in_its_trace(tmp_path: Path) -> None:
    env = {**os.environ, "WORKFLOWS_TEST_LOG": str(tmp_path / "log"), "OTEL_METRIC_EXPORT_INTERVAL": "60000"}
    env.pop("WORKFLOWS_EXPORTERS", None)
    done = subprocess.run(
        [sys.executable, str(APPS / "traced_check.py"), f"sqlite:///{tmp_path / 'runs.db'}"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    spans = out["spans"]
    request = next(s for s in spans if s["name"] == "POST /workflows/{name}/run-nowait")
    assert request["kind"] == "SERVER"
    runs = [s for s in spans if s["name"] == "AskHuman.run"]
    assert len(runs) == 2, [s["name"] for s in spans]  # the first part, then the continued run
    first, continued = runs
    assert first["parent"] == request["id"] and first["trace"] == request["trace"]
    assert continued["trace"] == first["trace"], "the continued run left its trace"
    assert out["waiting"]["workflows_server.runs.waiting"] == 1
    assert out["after"]["workflows_server.runs.waiting"] == 0
    assert out["after"]["workflows_server.runs.continued"] == 1
