"""Metrics: the instruments of the trace contract, recorded through a real SDK MeterProvider."""

from __future__ import annotations

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from instrumentation.tracing_support import Tracing
from workflows.events import StartEvent, StopEvent
from workflows.instrumentation import (
    EventEmitted,
    OpenTelemetryHandler,
    OpenTelemetryMetricsHandler,
    RunFinished,
    RunInfo,
    RunStarted,
    StepFinished,
    StepStarted,
)


def new_run(run_id: str = "run-1") -> RunInfo:
    return RunInfo(workflow_name="Flow", run_id=run_id, session_id="sess-1")


def feed_one_run(handler: object, run: RunInfo, status: str = "completed") -> None:
    handle = handler.handle  # type: ignore[attr-defined]
    assert handle(RunStarted(run=run, start_event=StartEvent())) is True
    handle(EventEmitted(run=run, event=StartEvent(), event_id="e1", source="start", step=None, invocation_id=None, targets=("work",)))
    handle(StepStarted(run=run, step="work", invocation_id=1, attempt=1, worker=0, event=StartEvent(), event_id="e1"))
    handle(StepFinished(run=run, step="work", invocation_id=1, attempt=1, outcome="retrying", output=None, error=ValueError("x"), retry_delay=0.0))
    handle(StepStarted(run=run, step="work", invocation_id=1, attempt=2, worker=0, event=StartEvent(), event_id="e1"))
    handle(EventEmitted(run=run, event=StopEvent(), event_id="e2", source="return", step="work", invocation_id=1))
    handle(StepFinished(run=run, step="work", invocation_id=1, attempt=2, outcome="completed", output=StopEvent()))
    handle(RunFinished(run=run, status=status))  # type: ignore[arg-type]


def points_by_attributes(tracing: Tracing, name: str) -> dict[frozenset, object]:
    return {frozenset(p.attributes.items()): p for p in tracing.metric_points(name)}


def test_runs_and_their_durations_are_counted_by_status(detached_tracing: Tracing) -> None:
    feed_one_run(detached_tracing.handler, new_run("a"))
    feed_one_run(detached_tracing.handler, new_run("b"), status="failed")
    runs = points_by_attributes(detached_tracing, "workflow.runs")
    completed = frozenset({("workflow.name", "Flow"), ("workflow.run.status", "completed")})
    failed = frozenset({("workflow.name", "Flow"), ("workflow.run.status", "failed")})
    assert runs[completed].value == 1 and runs[failed].value == 1  # type: ignore[attr-defined]
    durations = points_by_attributes(detached_tracing, "workflow.run.duration")
    assert durations[completed].count == 1  # type: ignore[attr-defined]
    assert durations[completed].sum >= 0  # type: ignore[attr-defined]


def test_step_durations_by_outcome_and_retries(detached_tracing: Tracing) -> None:
    feed_one_run(detached_tracing.handler, new_run())
    steps = points_by_attributes(detached_tracing, "workflow.step.duration")
    base = {("workflow.name", "Flow"), ("workflow.step.name", "work")}
    assert steps[frozenset(base | {("outcome", "retrying")})].count == 1  # type: ignore[attr-defined]
    assert steps[frozenset(base | {("outcome", "completed")})].count == 1  # type: ignore[attr-defined]
    (retries,) = detached_tracing.metric_points("workflow.step.retries")
    assert retries.value == 1 and dict(retries.attributes) == dict(base)


def test_events_are_counted_by_type_and_source(detached_tracing: Tracing) -> None:
    feed_one_run(detached_tracing.handler, new_run())
    events = {
        (p.attributes["workflow.event.type"], p.attributes["workflow.event.source"]): p.value
        for p in detached_tracing.metric_points("workflow.events")
    }
    assert events == {("StartEvent", "start"): 1, ("StopEvent", "return"): 1}


def test_active_runs_go_up_and_back_down(detached_tracing: Tracing) -> None:
    handler = detached_tracing.handler
    run = new_run()
    handler.handle(RunStarted(run=run, start_event=StartEvent()))
    (during,) = detached_tracing.metric_points("workflow.runs.active")
    assert during.value == 1
    handler.handle(RunFinished(run=run, status="cancelled"))
    (after,) = detached_tracing.metric_points("workflow.runs.active")
    assert after.value == 0


def test_metrics_handler_opts_out_without_a_meter_provider() -> None:
    run = new_run()
    assert OpenTelemetryMetricsHandler(NoOpMeterProvider()).handle(RunStarted(run=run, start_event=StartEvent())) is False
    # the global provider is the API's proxy in the test process unless someone set one
    handler = OpenTelemetryMetricsHandler()
    from opentelemetry import metrics

    expected = type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider"
    assert (handler.handle(RunStarted(run=new_run("x"), start_event=StartEvent())) is True) == expected


def test_sampled_out_run_is_still_counted() -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    handler = OpenTelemetryHandler(tracer_provider=TracerProvider(sampler=ALWAYS_OFF), meter_provider=meter_provider)
    feed_one_run(handler, new_run())
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"workflow.runs", "workflow.step.duration", "workflow.events"} <= names
    meter_provider.shutdown()


def test_tracing_without_metrics_records_no_metrics() -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    handler = OpenTelemetryHandler(tracer_provider=TracerProvider(), meter_provider=meter_provider, metrics=False)
    feed_one_run(handler, new_run())
    data = reader.get_metrics_data()
    assert data is None or not [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    meter_provider.shutdown()
