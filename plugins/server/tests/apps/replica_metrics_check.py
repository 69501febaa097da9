"""Run in its own process (a global OpenTelemetry SDK can be set once per process): a replica served
in-process takes over a run from a killed replica (a real server process), then loses it to another
claimant; prints the replica metrics read through the OpenTelemetry SDK at each point, as JSON.

argv: database URL, side-effect log, gates folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import psycopg
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from starlette.testclient import TestClient

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[3] / "tests"))  # server_helpers imports the tests' support package
from server_helpers import ServerProcess, wait_for  # noqa: E402

url, log, gates = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
os.environ.update({"WORKFLOWS_TEST_LOG": str(log), "WORKFLOWS_TEST_GATES": gates})
settings = {"WORKFLOWS_SERVER_LEASE_SECONDS": "1", "WORKFLOWS_SERVER_POLL_SECONDS": "0.1"}
os.environ.update(settings)

import replica_app  # noqa: E402
from workflows_server import ServerSettings  # noqa: E402


def values() -> dict[str, float]:
    found: dict[str, float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith(("workflows_server.replica", "workflows_server.queue")):
                    found[metric.name] = sum(p.value for p in metric.data.data_points)
    return found


dead = ServerProcess(app=HERE / "replica_app.py", store=url, log=log, env=settings).start()
try:
    handler_id = httpx.post(f"{dead.url}/workflows/gated/run-nowait", json={"start_event": {"tag": "x"}}).json()["handler_id"]
    wait_for(lambda: "work-begin:x:0" in log.read_text(), "the step to begin on the first replica")
finally:
    dead.kill()

replica_app.server.configure(store=url, settings=ServerSettings.from_env(replica_id="in-process"))
with TestClient(replica_app.server.app, base_url="http://localhost") as client:
    runs = replica_app.server.runs
    wait_for(lambda: handler_id in runs.live.handlers, "the in-process replica to take the run over")
    taken = values()
    # Another claimant takes the run as if this replica's lease had lapsed: in one statement, so this
    # replica's heartbeat cannot renew the lease between the lapse and the claim.
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "UPDATE handlers SET owner = 'thief', fence = fence + 1, lease_until = now() + interval '60 seconds' "
            "WHERE handler_id = %s", (handler_id,),
        )
    wait_for(lambda: handler_id not in runs.live.handlers, "the in-process replica to drop the run")
    lost = values()
print(json.dumps({"taken": taken, "lost": lost}))
