"""The server's run metrics, through the OpenTelemetry API.

``workflows_server.runs.active`` (runs held in memory, working or about to be let go
of), ``workflows_server.runs.waiting`` (runs waiting for an outside event, held by the
store alone) and ``workflows_server.runs.continued`` (runs continued from the store:
after a restart or when their event arrived). The engine's own metrics
(``workflow.runs``, ``workflow.step.duration``...) come from the core as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from workflows_server.http.middleware import METER_NAME
from workflows_server.store import StoreError

if TYPE_CHECKING:
    from workflows_server.runs import RunService


def register_run_metrics(runs: RunService) -> None:
    """Report ``runs``' gauges and counter on the global meter provider (read when metrics are collected)."""
    meter = metrics.get_meter(METER_NAME)

    def active(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(len(runs.live.handlers))

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
    if runs.replica is not None:
        register_replica_metrics(runs)


def register_replica_metrics(runs: RunService) -> None:
    """The replica gauges and counters (a shared store only); read when metrics are collected."""
    replica = runs.replica
    assert replica is not None
    meter = metrics.get_meter(METER_NAME)

    def attributes() -> dict[str, str]:
        return {"workflows_server.replica": replica.owner}

    def held(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(len(replica.store.held()), attributes())

    def depth(options: CallbackOptions) -> Iterable[Observation]:
        try:
            yield Observation(replica.store.queue_depth(), attributes())
        except StoreError:
            return  # the database is away: no reading this time

    def counter(key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(replica.counts[key], attributes())

        return observe

    def rejections(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(replica.fencing_rejections, attributes())

    meter.create_observable_gauge(
        "workflows_server.replica.runs", [held], unit="{run}", description="Runs this replica holds (claimed, leased)"
    )
    meter.create_observable_gauge(
        "workflows_server.queue.depth", [depth], unit="{run}",
        description="Runs queued in the shared store, free for any replica with room",
    )
    meter.create_observable_counter(
        "workflows_server.replica.takeovers", [counter("takeovers")], unit="{run}",
        description="Runs this replica took over from a replica whose lease lapsed",
    )
    meter.create_observable_counter(
        "workflows_server.replica.fencing_rejections", [rejections], unit="{write}",
        description="Writes of this replica refused because another replica had claimed the run",
    )
    meter.create_observable_counter(
        "workflows_server.replica.leases_lost", [counter("leases_lost")], unit="{run}",
        description="Runs this replica dropped because another replica had claimed them",
    )


__all__ = ["register_replica_metrics", "register_run_metrics"]
