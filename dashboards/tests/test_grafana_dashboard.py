"""The Grafana dashboard works: every query returns data from a real Prometheus scraping real runs.

Queries are read from the dashboard JSON and evaluated the way Grafana would send them,
with its variables substituted, so a renamed metric, label or unit on either side (code
or dashboard) fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DASHBOARD_PATH = Path(__file__).resolve().parents[1] / "grafana" / "workflows.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
RATE_INTERVAL = "15s"
"""What Grafana's $__rate_interval becomes: enough one-second scrapes for rate() to see increases."""
WORKFLOWS = {"OrderPipeline", "FlakyEnrichment"}
"""The workflows dashboards/tests/workload.py runs."""


def panels() -> list[dict[str, Any]]:
    return [p for p in DASHBOARD["panels"] if p["type"] != "row"]


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p['title']} [{t['refId']}]", t) for p in panels() for t in p["targets"]]


def variable(name: str) -> dict[str, Any]:
    return next(v for v in DASHBOARD["templating"]["list"] if v["name"] == name)


def as_sent(expr: str, workflow: str = ".*") -> str:
    """The query as Grafana sends it for the given ``$workflow`` regex ("All" is ``.*``)."""
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace("$workflow", workflow)


def legend_labels(legend: str) -> set[str]:
    return set(re.findall(r"{{\s*(\w+)\s*}}", legend))


def by_name(series: list[dict[str, Any]]) -> dict[str, float]:
    return {s["metric"]["workflow_name"]: float(s["value"][1]) for s in series}


TARGETS = targets()


@pytest.mark.parametrize("target", [t for _, t in TARGETS], ids=[name for name, _ in TARGETS])
def test_every_query_returns_data_labelled_as_its_legend_says(prometheus, target: dict[str, Any]) -> None:
    series = prometheus.wait_for(as_sent(target["expr"]))
    wanted = legend_labels(target["legendFormat"])
    for one in series:
        assert wanted <= set(one["metric"]), f"{one['metric']} lacks legend labels {wanted - set(one['metric'])}"


def test_the_workflow_variable_lists_the_workflows_that_ran(prometheus) -> None:
    definition = variable("workflow")["definition"]
    metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", definition).groups()  # type: ignore[union-attr]
    prometheus.wait_for(metric)
    assert WORKFLOWS <= set(prometheus.label_values(label, metric))


def test_choosing_one_workflow_narrows_every_per_workflow_panel_to_it(prometheus) -> None:
    # FlakyEnrichment is the one with data in every panel (retries and failures included).
    for name, target in TARGETS:
        if "workflow_name" not in legend_labels(target["legendFormat"]):
            continue
        series = prometheus.wait_for(as_sent(target["expr"], workflow="FlakyEnrichment"))
        assert {s["metric"]["workflow_name"] for s in series} == {"FlakyEnrichment"}, name


def test_events_by_type_show_only_the_chosen_workflows_event_classes(prometheus) -> None:
    target = next(t for name, t in TARGETS if name.startswith("Events per second by type"))
    series = prometheus.wait_for(as_sent(target["expr"], workflow="OrderPipeline"))
    assert {s["metric"]["workflow_event_type"] for s in series} == {"StartEvent", "OrderValidated", "Progress", "StopEvent"}


def test_error_rate_is_zero_for_a_healthy_workflow_and_the_failed_share_for_a_failing_one(prometheus) -> None:
    target = next(t for name, t in TARGETS if name.startswith("Error rate by workflow"))
    rates = by_name(prometheus.wait_for(as_sent(target["expr"]), lambda s: WORKFLOWS <= set(by_name(s))))
    assert rates["OrderPipeline"] == 0.0
    assert 0.0 < rates["FlakyEnrichment"] < 1.0  # one run in three fails


def test_retries_are_shown_for_the_retried_step_only(prometheus) -> None:
    target = next(t for name, t in TARGETS if name.startswith("Retries per second by step"))
    series = prometheus.wait_for(as_sent(target["expr"]))
    assert {(s["metric"]["workflow_name"], s["metric"]["workflow_step_name"]) for s in series} == {
        ("FlakyEnrichment", "fetch")
    }


def test_runs_by_status_include_completed_and_failed(prometheus) -> None:
    target = next(t for name, t in TARGETS if name.startswith("Runs per second by status"))
    series = prometheus.wait_for(
        as_sent(target["expr"]), lambda s: {x["metric"]["workflow_run_status"] for x in s} >= {"completed", "failed"}
    )
    statuses = {(s["metric"]["workflow_name"], s["metric"]["workflow_run_status"]) for s in series}
    assert ("FlakyEnrichment", "failed") in statuses and ("OrderPipeline", "failed") not in statuses


def test_every_metric_the_dashboard_names_is_exposed_by_the_engine(metrics_workload) -> None:
    queries = [t["expr"] for _, t in TARGETS] + [variable("workflow")["definition"]]
    named = {name for query in queries for name in re.findall(r"\bworkflow_[a-z_]+\b", query)}
    named -= {"workflow_name", "workflow_run_status", "workflow_step_name", "workflow_event_type", "workflow_event_source"}
    exposed = set(re.findall(r"^(workflow_[a-z_]+)[{ ]", metrics_workload.scrape(), re.MULTILINE))
    assert named, "the dashboard names no workflow metric"
    assert named <= exposed, f"dashboard metrics the engine does not expose: {sorted(named - exposed)}"
