"""Run in its own process (a global OpenTelemetry SDK can be set once per process): serve the test
app in-process, ask a human, answer after the run was let go of, and print spans and metrics as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

sys.path.insert(0, str(Path(__file__).parent))
import durable_app  # noqa: E402

from workflows_server.http.guard.requests import REQUEST_ID_ATTRIBUTE  # noqa: E402

durable_app.server.configure(store=sys.argv[1])


def metric_values() -> dict[str, float]:
    found: dict[str, float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith("workflows_server.runs"):
                    found[metric.name] = sum(p.value for p in metric.data.data_points)
    return found


with TestClient(durable_app.server.app, base_url="http://localhost") as client:
    handler_id = client.post("/workflows/ask/run-nowait", json={"start_event": {"tag": "t"}},
                             headers={"X-Request-ID": "traced-request-1"}).json()["handler_id"]
    with client.stream("GET", f"/events/{handler_id}") as response:
        for line in response.iter_lines():
            if "InputRequiredEvent" in line:
                break
    runs = durable_app.server.runs
    deadline = time.monotonic() + 20
    while handler_id in runs.live.handlers:  # let go of at once (idle_release_seconds=0), on the server's loop
        assert time.monotonic() < deadline, "the waiting run was never let go of"
        time.sleep(0.01)
    waiting = metric_values()
    assert client.post(f"/events/{handler_id}", json={"event": {"type": "HumanResponseEvent", "value": {"response": "y"}}}).status_code == 200
    with client.stream("GET", f"/events/{handler_id}") as response:
        list(response.iter_lines())
    after = metric_values()

spans = [
    {"name": s.name, "trace": s.context.trace_id, "id": s.context.span_id, "parent": s.parent.span_id if s.parent else None,
     "kind": s.kind.name, "request_id": (s.attributes or {}).get(REQUEST_ID_ATTRIBUTE)}
    for s in exporter.get_finished_spans()
]
print(json.dumps({"spans": spans, "waiting": waiting, "after": after}))
