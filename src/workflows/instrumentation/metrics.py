"""The metrics handler: run and step counts and durations, through the OpenTelemetry metrics API.

Instruments (see docs/tracing.md): ``workflow.runs``, ``workflow.run.duration``,
``workflow.step.duration``, ``workflow.step.retries``, ``workflow.events`` and
``workflow.runs.active``. Metrics are kept apart from spans so that a run the trace
sampler drops is still counted. When no meter provider is configured (the API's no-op
or proxy provider) the handler opts out of every run.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from opentelemetry import metrics
from opentelemetry.metrics import Meter, MeterProvider, NoOpMeterProvider

from workflows.instrumentation._scope import METER_NAME, version
from workflows.instrumentation.events import (
    EventEmitted,
    InstrumentationEvent,
    RunFinished,
    RunInfo,
    RunStarted,
    StepFinished,
    StepStarted,
)

# Durations of workflow steps and runs span microseconds to minutes; the SDK's default
# buckets are meant for milliseconds and would put nearly every step in the first one.
_DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
)  # fmt: skip


def _is_configured(provider: MeterProvider) -> bool:
    """False for the API's no-op provider and for the global proxy no SDK has replaced."""
    if isinstance(provider, NoOpMeterProvider):
        return False
    return type(provider).__name__ != "_ProxyMeterProvider"


class _Instruments:
    def __init__(self, meter: Meter) -> None:
        self.runs = meter.create_counter(
            "workflow.runs", unit="{run}", description="Workflow runs that ended, by status"
        )
        self.run_duration = meter.create_histogram(
            "workflow.run.duration",
            unit="s",
            description="Duration of workflow runs",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.step_duration = meter.create_histogram(
            "workflow.step.duration",
            unit="s",
            description="Duration of step attempts, by outcome",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.step_retries = meter.create_counter(
            "workflow.step.retries", unit="{retry}", description="Step attempts after the first"
        )
        self.events = meter.create_counter(
            "workflow.events", unit="{event}", description="Events that entered a run"
        )
        self.runs_active = meter.create_up_down_counter(
            "workflow.runs.active", unit="{run}", description="Runs in progress"
        )


class _RunMeter:
    __slots__ = ("instruments", "attributes", "started", "steps")

    def __init__(self, instruments: _Instruments, attributes: dict[str, Any]) -> None:
        self.instruments = instruments
        self.attributes = attributes
        self.started = time.perf_counter()
        self.steps: dict[tuple[str, int], float] = {}


class OpenTelemetryMetricsHandler:
    """Records the workflow metrics. ``meter_provider`` defaults to the global provider,
    looked up when each run starts. ``OpenTelemetryHandler`` includes one of these unless
    built with ``metrics=False``; add this one alone to get metrics without spans."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        self._meter_provider = meter_provider
        self._provider_seen: MeterProvider | None = None
        self._instruments: _Instruments | None = None
        self._event_attributes: dict[tuple[str, str, str], dict[str, str]] = {}
        self._handlers: dict[type, Callable[[Any, RunInfo, _RunMeter], None]] = {
            StepStarted: self._step_started,
            StepFinished: self._step_finished,
            EventEmitted: self._event_emitted,
            RunFinished: self._run_finished,
        }

    def handle(self, event: InstrumentationEvent) -> bool | None:
        """Record ``event``; for ``RunStarted``, answer whether a meter provider is configured."""
        run = event.run
        if run is None:
            return None
        if type(event) is RunStarted:
            return self._run_started(run)
        meter = run.scratch.get(self)
        handler = self._handlers.get(type(event))
        if meter is not None and handler is not None:
            handler(event, run, meter)
        return None

    def _current_instruments(self) -> _Instruments | None:
        provider = self._meter_provider if self._meter_provider is not None else metrics.get_meter_provider()
        if provider is not self._provider_seen:
            self._instruments = None
            if _is_configured(provider):
                self._instruments = _Instruments(provider.get_meter(METER_NAME, version()))
            self._provider_seen = provider
        return self._instruments

    def _run_started(self, run: RunInfo) -> bool:
        instruments = self._current_instruments()
        if instruments is None:
            return False
        meter = _RunMeter(instruments, {"workflow.name": run.workflow_name})
        run.scratch[self] = meter
        instruments.runs_active.add(1, meter.attributes)
        return True

    def _run_finished(self, event: RunFinished, run: RunInfo, meter: _RunMeter) -> None:
        del run.scratch[self]
        attributes = {**meter.attributes, "workflow.run.status": event.status}
        meter.instruments.runs_active.add(-1, meter.attributes)
        meter.instruments.runs.add(1, attributes)
        meter.instruments.run_duration.record(time.perf_counter() - meter.started, attributes)

    def _step_started(self, event: StepStarted, run: RunInfo, meter: _RunMeter) -> None:
        meter.steps[(event.step, event.invocation_id)] = time.perf_counter()
        if event.attempt > 1:
            meter.instruments.step_retries.add(
                1, {"workflow.name": run.workflow_name, "workflow.step.name": event.step}
            )

    def _step_finished(self, event: StepFinished, run: RunInfo, meter: _RunMeter) -> None:
        started = meter.steps.pop((event.step, event.invocation_id), None)
        if started is None:
            return
        attributes = {
            "workflow.name": run.workflow_name,
            "workflow.step.name": event.step,
            "outcome": event.outcome,
        }
        meter.instruments.step_duration.record(time.perf_counter() - started, attributes)

    def _event_emitted(self, event: EventEmitted, run: RunInfo, meter: _RunMeter) -> None:
        type_name = type(event.event).__name__ if event.event is not None else "Event"
        key = (run.workflow_name, type_name, event.source)
        attributes = self._event_attributes.get(key)
        if attributes is None:  # built once per (workflow, type, source)
            attributes = self._event_attributes[key] = {
                "workflow.name": run.workflow_name,
                "workflow.event.type": type_name,
                "workflow.event.source": event.source,
            }
        meter.instruments.events.add(1, attributes)
