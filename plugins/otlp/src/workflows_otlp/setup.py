"""``register()``: traces, metrics and logs of workflow runs to any OTLP receiver."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from workflows.instrumentation.export_grace import (
    GracefulBatchSpanProcessor,
    GuardedLogExporter,
    GuardedMetricExporter,
    GuardedSpanExporter,
    arm_at_exit,
)
from workflows.instrumentation.settings import export_grace_seconds
from workflows_otlp import settings
from workflows_otlp.log_handler import OTelLogHandler
from workflows_otlp.settings import GRPC, Signal, SignalSettings

logger = logging.getLogger("workflows_otlp")


@dataclass
class OTLPSetup:
    """What ``register()`` configured; keep it to flush or shut the export down.

    ``traces`` / ``metrics`` / ``logs`` say where each enabled signal goes (``None``
    when disabled). The providers are the ones the exporters were attached to: the
    global SDK providers when ``set_global`` found or installed them, otherwise
    private ones to hand to your own code.
    """

    resource: Resource
    traces: SignalSettings | None = None
    metrics: SignalSettings | None = None
    logs: SignalSettings | None = None
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    log_handler: logging.Handler | None = None
    _span_processor: GracefulBatchSpanProcessor | None = None
    _metric_reader: PeriodicExportingMetricReader | None = None
    _log_processor: BatchLogRecordProcessor | None = None
    _guards: list[Any] = field(default_factory=list)
    _owned: list[Any] = field(default_factory=list)

    @property
    def unsent(self) -> dict[str, int]:
        """What could not be sent so far, per signal (spans, metric collections, log records)."""
        return {guarded.guard.what: guarded.unsent for guarded in self._guards}

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything recorded so far; ``False`` if some export did not finish in time."""
        flushed = True
        for part in (self._span_processor, self._metric_reader, self._log_processor):
            if part is not None:
                flushed = bool(part.force_flush(timeout_millis)) and flushed
        return flushed

    def shutdown(self) -> None:
        """Flush and stop the exporters this call attached, leaving other plugins' alone.

        Providers that ``register()`` created are shut down too; shared global
        providers (created by someone else) keep running without these exporters.
        What is left gets the exit grace, in all (see ``register()``).
        """
        for guarded in self._guards:
            guarded.guard.begin_end()
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
        for provider in self._owned:
            provider.shutdown()
        if self.tracer_provider not in self._owned and self._span_processor is not None:
            self._span_processor.shutdown()
        if self.meter_provider not in self._owned and self._metric_reader is not None:
            assert self.meter_provider is not None
            # Removing a reader shuts it down after detaching it, so export first.
            self._metric_reader.force_flush()
            self.meter_provider.remove_metric_reader(self._metric_reader)
        if self.logger_provider not in self._owned and self._log_processor is not None:
            self._log_processor.shutdown()


def register(
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    service_name: str | None = None,
    traces: bool = True,
    metrics: bool = True,
    logs: bool = False,
    set_global: bool = True,
    *,
    resource_attributes: Mapping[str, Any] | None = None,
    export_grace: float | None = None,
) -> OTLPSetup:
    """Send workflow traces, metrics and (with ``logs=True``) Python logs over OTLP.

    With no arguments everything comes from the standard ``OTEL_*`` variables:
    endpoints (``OTEL_EXPORTER_OTLP_ENDPOINT`` and the per-signal ones), headers,
    protocol (``grpc`` or ``http/protobuf``, the default), ``OTEL_SERVICE_NAME``,
    ``OTEL_RESOURCE_ATTRIBUTES``, batch settings (``OTEL_BSP_*``, ``OTEL_BLRP_*``,
    ``OTEL_METRIC_EXPORT_INTERVAL``), attribute limits, sampler, timeouts,
    compression and certificates. Arguments override them: ``endpoint`` is the
    receiver's base URL (``http://host:4318`` for HTTP, ``http://host:4317`` for gRPC)
    and applies to every enabled signal, ``headers`` are added to the ones from the
    environment, ``service_name`` and ``resource_attributes`` are added to the
    resource.

    With ``set_global=True`` the exporters are attached to the global OpenTelemetry
    providers, which the engine records into: an SDK provider already installed (by
    another plugin, for example) is reused, otherwise a new one is installed. With
    ``set_global=False`` new private providers are returned in the ``OTLPSetup``.

    ``OTEL_TRACES_EXPORTER=none`` (or ``OTEL_METRICS_EXPORTER``, ``OTEL_LOGS_EXPORTER``)
    turns that signal off whatever the arguments say: receivers that take traces only,
    such as Phoenix and Langfuse, otherwise answer every metrics export with an error.

    Export runs in background threads: a receiver that is down or slow only costs
    logged export errors, never a failed workflow. When the program ends (or
    ``shutdown()`` is called), what is left gets ``export_grace`` seconds in all
    (default ``WORKFLOWS_EXPORT_GRACE_SECONDS``, else 2), whatever the exporters'
    timeouts; what could not be sent is counted (``OTLPSetup.unsent``) and logged once
    per signal. Raises ``OTLPConfigurationError`` for an unsupported protocol.
    """
    export_grace_seconds(export_grace)  # a bad value fails before anything is set up
    attributes = dict(resource_attributes or {})
    if service_name is not None:
        attributes["service.name"] = service_name
    resource = Resource.create(attributes)
    setup = OTLPSetup(resource=resource)
    wanted: tuple[tuple[Signal, bool], ...] = (("traces", traces), ("metrics", metrics), ("logs", logs))
    resolved = {
        signal: settings.resolve(signal, endpoint=endpoint, protocol=protocol, headers=headers)
        for signal, enabled in wanted
        if enabled and not _switched_off(signal)
    }
    if "traces" in resolved:
        _attach_traces(setup, resolved["traces"], set_global)
    if "metrics" in resolved:
        _attach_metrics(setup, resolved["metrics"], set_global)
    if "logs" in resolved:
        _attach_logs(setup, resolved["logs"], set_global)
    _warn_if_resource_ignored(setup, attributes)
    arm_at_exit(export_grace)  # after the providers' exit hooks: runs before them
    logger.info(
        "OTLP export configured: %s",
        ", ".join(f"{s.signal} -> {s.endpoint} ({s.protocol})" for s in resolved.values()) or "nothing",
    )
    return setup


def _switched_off(signal: Signal) -> bool:
    """``OTEL_TRACES_EXPORTER=none`` (likewise METRICS, LOGS): the standard way to turn a
    signal off from the environment, the only one left when plugins load from
    ``WORKFLOWS_EXPORTERS``."""
    value = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "")
    return value.strip().lower() == "none"


def _attach_traces(setup: OTLPSetup, target: SignalSettings, set_global: bool) -> None:
    provider = _global_sdk_provider(trace.get_tracer_provider(), TracerProvider) if set_global else None
    if provider is None:
        provider = TracerProvider(resource=setup.resource)
        setup._owned.append(provider)
        if set_global:
            trace.set_tracer_provider(provider)
    exporter = GuardedSpanExporter(_span_exporter(target), destination=target.endpoint, log=logger)
    setup._guards.append(exporter)
    processor = GracefulBatchSpanProcessor(exporter)
    _add_span_processor(provider, processor)
    setup.traces, setup.tracer_provider, setup._span_processor = target, provider, processor


def _add_span_processor(provider: TracerProvider, processor: GracefulBatchSpanProcessor) -> None:
    # Phoenix's TracerProvider (installed by workflows_phoenix) drops its own exporter when
    # another processor is added, unless told to keep it.
    if "replace_default_processor" in inspect.signature(provider.add_span_processor).parameters:
        provider.add_span_processor(processor, replace_default_processor=False)  # type: ignore[call-arg]
    else:
        provider.add_span_processor(processor)


def _attach_metrics(setup: OTLPSetup, target: SignalSettings, set_global: bool) -> None:
    provider = _global_sdk_provider(metrics.get_meter_provider(), MeterProvider) if set_global else None
    if provider is not None and not hasattr(provider, "add_metric_reader"):
        logger.warning(
            "the global MeterProvider was installed by someone else and this opentelemetry-sdk cannot "
            "add a metric reader to it; upgrade opentelemetry-sdk or call register() first to export metrics"
        )
        return
    exporter = GuardedMetricExporter(_metric_exporter(target), destination=target.endpoint, log=logger)
    setup._guards.append(exporter)
    reader = PeriodicExportingMetricReader(exporter)
    if provider is None:
        provider = MeterProvider(resource=setup.resource, metric_readers=[reader])
        setup._owned.append(provider)
        if set_global:
            metrics.set_meter_provider(provider)
    else:
        provider.add_metric_reader(reader)
    setup.metrics, setup.meter_provider, setup._metric_reader = target, provider, reader


def _attach_logs(setup: OTLPSetup, target: SignalSettings, set_global: bool) -> None:
    provider = _global_sdk_provider(_logs.get_logger_provider(), LoggerProvider) if set_global else None
    if provider is None:
        provider = LoggerProvider(resource=setup.resource)
        setup._owned.append(provider)
        if set_global:
            _logs.set_logger_provider(provider)
    exporter = GuardedLogExporter(_log_exporter(target), destination=target.endpoint, log=logger)
    setup._guards.append(exporter)
    processor = BatchLogRecordProcessor(exporter)  # type: ignore[arg-type]
    provider.add_log_record_processor(processor)
    handler = OTelLogHandler(provider)
    logging.getLogger().addHandler(handler)
    setup.logs, setup.logger_provider, setup._log_processor, setup.log_handler = target, provider, processor, handler


def _warn_if_resource_ignored(setup: OTLPSetup, attributes: Mapping[str, Any]) -> None:
    shared = [
        provider
        for provider in (setup.tracer_provider, setup.meter_provider, setup.logger_provider)
        if provider is not None and provider not in setup._owned
    ]
    for provider in shared:
        resource = getattr(provider, "resource", None)  # MeterProvider keeps its resource private
        if resource is not None and any(resource.attributes.get(k) != v for k, v in attributes.items()):
            logger.warning(
                "service_name/resource_attributes were not applied: the global %s was created earlier "
                "with its own resource (set OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES instead, "
                "or call workflows_otlp.register() first)",
                type(provider).__name__,
            )
            return


def _global_sdk_provider(current: object, sdk_type: type[Any]) -> Any:
    """The installed global provider if it is the SDK's, else ``None`` (still the API's proxy)."""
    return current if isinstance(current, sdk_type) else None


# Exporter classes are imported per protocol so that the gRPC stack (grpcio) is only
# loaded by users who chose it.


def _span_exporter(target: SignalSettings) -> Any:
    if target.protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(endpoint=target.endpoint, headers=target.headers)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=target.endpoint, headers=target.headers)


def _metric_exporter(target: SignalSettings) -> Any:
    if target.protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return GrpcMetricExporter(endpoint=target.endpoint, headers=target.headers)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter,
    )

    return OTLPMetricExporter(endpoint=target.endpoint, headers=target.headers)


def _log_exporter(target: SignalSettings) -> Any:
    if target.protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcLogExporter,
        )

        return GrpcLogExporter(endpoint=target.endpoint, headers=target.headers)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(endpoint=target.endpoint, headers=target.headers)
