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
    assert request["request_id"] == "traced-request-1", "the request's id is on its span"
    runs = [s for s in spans if s["name"] == "AskHuman.run"]
    assert len(runs) == 2, [s["name"] for s in spans]  # the first part, then the continued run
    first, continued = runs
    assert first["parent"] == request["id"] and first["trace"] == request["trace"]
    assert continued["trace"] == first["trace"], "the continued run left its trace"
    assert out["waiting"]["workflows_server.runs.waiting"] == 1
    assert out["after"]["workflows_server.runs.waiting"] == 0
    assert out["after"]["workflows_server.runs.continued"] == 1


def test_replica_metrics_count_runs_takeovers_and_lost_leases(fresh_postgres_db: str, tmp_path: Path) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    log = tmp_path / "log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOWS_", "OTEL_"))}
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "60000"
    done = subprocess.run(
        [sys.executable, str(APPS / "replica_metrics_check.py"), fresh_postgres_db, str(log), str(gates)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    taken, lost = out["taken"], out["lost"]
    assert taken["workflows_server.replica.runs"] == 1
    assert taken["workflows_server.replica.takeovers"] == 1
    assert taken["workflows_server.queue.depth"] == 0
    assert taken["workflows_server.replica.fencing_rejections"] == 0
    assert lost["workflows_server.replica.leases_lost"] == 1
    assert lost["workflows_server.replica.runs"] == 0
