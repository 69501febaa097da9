"""serve_metrics(): workflow metrics on a /metrics endpoint, under the names the dashboards query."""

from __future__ import annotations

import httpx
import pytest
import workflows_otlp
from workflows_otlp.prometheus import serve_metrics
from workflows_otlp.settings import OTLPConfigurationError


def test_metrics_are_served_with_prometheus_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    setup = serve_metrics(set_global=False)
    try:
        assert setup.url.startswith("http://127.0.0.1:") and not setup.url.endswith(":0/metrics")
        meter = setup.meter_provider.get_meter("workflows")
        meter.create_counter("workflow.runs", unit="{run}").add(2, {"workflow.name": "W", "workflow.run.status": "failed"})
        meter.create_histogram("workflow.run.duration", unit="s").record(0.5, {"workflow.name": "W"})
        body = httpx.get(setup.url).text
    finally:
        setup.shutdown()
    assert 'workflow_runs_total{' in body and 'workflow_run_status="failed"' in body
    assert "workflow_run_duration_seconds_bucket{" in body
    with pytest.raises(httpx.TransportError):
        httpx.get(setup.url, timeout=2.0)


def test_serving_joins_the_global_provider_beside_otlp_export(fresh_otel_globals: None, otlp_receiver) -> None:
    otlp = workflows_otlp.register(endpoint=otlp_receiver.endpoint, traces=False)
    served = serve_metrics(host="127.0.0.1", port=0)
    try:
        assert served.meter_provider is otlp.meter_provider
        from opentelemetry import metrics

        metrics.get_meter("workflows").create_counter("workflow.events").add(1, {"workflow.name": "W"})
        assert "workflow_events_total{" in httpx.get(served.url).text
        assert otlp.force_flush()
        assert any(p["name"] == "workflow.events" for p in otlp_receiver.metrics())
    finally:
        served.shutdown()
    try:
        assert otlp.force_flush()  # the shared provider still exports after the endpoint stopped
    finally:
        otlp.shutdown()


def test_a_bad_port_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "metrics")
    with pytest.raises(OTLPConfigurationError, match="OTEL_EXPORTER_PROMETHEUS_PORT is 'metrics'"):
        serve_metrics(set_global=False)
