"""The shipped configs are well formed and agree with each other and with the OTLP plugin.

No OpenTelemetry Collector binary can be installed here, so its config is checked for
what the collector itself validates at start-up (every component a pipeline names is
defined) and for the wiring this project relies on. The Prometheus config is checked by
Prometheus's own ``promtool`` (and used for real by the dashboard tests).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from workflows_otlp import settings

DASHBOARDS = Path(__file__).resolve().parents[1]
COLLECTOR: dict[str, Any] = yaml.safe_load((DASHBOARDS / "otel-collector" / "collector.yaml").read_text())
PROMETHEUS_CONFIG = DASHBOARDS / "prometheus" / "prometheus.yml"
DASHBOARD: dict[str, Any] = json.loads((DASHBOARDS / "grafana" / "workflows.json").read_text())


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_promtool_accepts_the_prometheus_config(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_component_a_collector_pipeline_names_is_defined_and_every_defined_one_used() -> None:
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, pipeline in COLLECTOR["service"]["pipelines"].items():
        for kind in used:
            for component in pipeline.get(kind, []):
                assert component in COLLECTOR.get(kind, {}), f"pipeline {name} names undefined {kind[:-1]} {component}"
                used[kind].add(component)
    for kind, names in used.items():
        assert set(COLLECTOR.get(kind, {})) == names, f"{kind} defined but unused: {set(COLLECTOR[kind]) - names}"


def test_collector_receives_otlp_on_the_ports_the_plugin_sends_to_by_default() -> None:
    protocols = COLLECTOR["receivers"]["otlp"]["protocols"]
    assert port_of(protocols["grpc"]["endpoint"]) == port_of(settings.DEFAULT_GRPC_ENDPOINT)
    assert port_of(protocols["http"]["endpoint"]) == port_of(settings.DEFAULT_HTTP_ENDPOINT)


def test_collector_sends_traces_to_phoenix_and_langfuse_over_otlp_http() -> None:
    traces = COLLECTOR["service"]["pipelines"]["traces"]
    exporters = {name: COLLECTOR["exporters"][name] for name in traces["exporters"]}
    assert all(name.split("/")[0] == "otlphttp" for name in exporters), "Langfuse accepts OTLP over HTTP only"
    phoenix = exporters["otlphttp/phoenix"]
    assert "PHOENIX_ENDPOINT" in phoenix["endpoint"]
    langfuse = exporters["otlphttp/langfuse"]
    assert "LANGFUSE_OTEL_ENDPOINT" in langfuse["endpoint"]
    assert langfuse["headers"]["authorization"].startswith("Basic ")
    assert langfuse["headers"]["x-langfuse-ingestion-version"] == "4"


def test_collector_serves_metrics_where_the_prometheus_config_scrapes_it() -> None:
    metrics = COLLECTOR["service"]["pipelines"]["metrics"]
    assert metrics["exporters"] == ["prometheus"]
    exporter = COLLECTOR["exporters"]["prometheus"]
    assert exporter["add_metric_suffixes"] is True  # the dashboard's names carry _total / _seconds
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "otel-collector")
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert {port_of(t) for t in targets} == {port_of(exporter["endpoint"])}


def test_the_workflows_scrape_job_uses_the_prometheus_exporters_default_port() -> None:
    from workflows_otlp.prometheus import DEFAULT_PORT

    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "workflows")
    assert [port_of(t) for group in job["static_configs"] for t in group["targets"]] == [DEFAULT_PORT]


def test_the_grafana_dashboard_is_importable_as_is() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"] and DASHBOARD["schemaVersion"] >= 36
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["workflow"]["multi"] and variables["workflow"]["includeAll"]
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the dashboard"
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)) and ref_ids, panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" and t["expr"].strip() for t in panel["targets"])


def test_the_dashboard_has_the_panels_production_needs() -> None:
    titles = {p["title"] for p in DASHBOARD["panels"]}
    for wanted in (
        "Runs per second by status",
        "Error rate by workflow",
        "Run latency percentiles",
        "Step latency percentiles by step",
        "Retries per second by step",
        "Events per second by type",
        "Active runs",
    ):
        assert wanted in titles
