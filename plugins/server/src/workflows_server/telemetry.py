"""The server's run metrics, through the OpenTelemetry API.

``workflows_server.runs.active`` (runs held in memory, working or about to be let go
of), ``workflows_server.runs.waiting`` (runs waiting for an outside event, held by the
store alone) and ``workflows_server.runs.continued`` (runs continued from the store:
after a restart or when their event arrived). The engine's own metrics
(``workflow.runs``, ``workflow.step.duration``...) come from the core as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from workflows_server.http import METER_NAME

if TYPE_CHECKING:
    from workflows_server.runs import RunManager


def register_run_metrics(runs: RunManager) -> None:
    """Report ``runs``' gauges and counter on the global meter provider (read when metrics are collected)."""
    meter = metrics.get_meter(METER_NAME)

    def active(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(len(runs.live))

    def waiting(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(max(runs.waiting, 0))

    def continued(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(runs.counts["continued"])

    meter.create_observable_gauge(
        "workflows_server.runs.active", [active], unit="{run}", description="Runs held in memory by this server"
    )
    meter.create_observable_gauge(
        "workflows_server.runs.waiting", [waiting], unit="{run}",
        description="Runs waiting for an outside event, held by the store alone",
    )
    meter.create_observable_counter(
        "workflows_server.runs.continued", [continued], unit="{run}",
        description="Runs continued from the store (after a restart, or when their awaited event arrived)",
    )


__all__ = ["register_run_metrics"]
