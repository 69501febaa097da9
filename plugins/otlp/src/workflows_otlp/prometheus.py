"""Expose workflow metrics on a Prometheus ``/metrics`` endpoint served by this process.

For setups without an OpenTelemetry Collector: Prometheus scrapes the process
directly. Metric names follow the OpenTelemetry-to-Prometheus rules of
``opentelemetry-exporter-prometheus`` (``workflow.run.duration`` in seconds becomes
``workflow_run_duration_seconds_bucket``/``_sum``/``_count``, counters gain ``_total``),
which are the names the dashboards in ``dashboards/`` query.

Needs the ``prometheus`` extra: ``pip install "otel-workflows-otlp[prometheus]"``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from workflows_otlp.settings import OTLPConfigurationError

try:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "workflows_otlp.prometheus needs opentelemetry-exporter-prometheus: "
        'pip install "otel-workflows-otlp[prometheus]"'
    ) from exc

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 9464


@dataclass
class PrometheusSetup:
    """The running ``/metrics`` endpoint; ``shutdown()`` stops its server and reader."""

    url: str
    meter_provider: MeterProvider
    reader: PrometheusMetricReader
    _server: Any
    _thread: threading.Thread
    _owns_provider: bool

    def shutdown(self) -> None:
        """Stop serving and detach the reader (or shut the provider down if it was ours)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if self._owns_provider:
            self.meter_provider.shutdown()
        else:
            self.meter_provider.remove_metric_reader(self.reader)


def serve_metrics(
    host: str | None = None,
    port: int | None = None,
    set_global: bool = True,
    *,
    environ: Mapping[str, str] | None = None,
) -> PrometheusSetup:
    """Serve workflow metrics for Prometheus at ``http://host:port/metrics``.

    ``host`` and ``port`` default to ``OTEL_EXPORTER_PROMETHEUS_HOST`` and
    ``OTEL_EXPORTER_PROMETHEUS_PORT`` (``localhost`` and ``9464``); port 0 picks a free
    one (read it from ``url``). With ``set_global=True`` the reader joins the global
    SDK MeterProvider (so it works beside ``register()``), or installs a new one.
    Only this package's registry is served, not the Python process collectors.
    """
    env = os.environ if environ is None else environ
    host = host or env.get("OTEL_EXPORTER_PROMETHEUS_HOST") or DEFAULT_HOST
    port = _port(port, env)
    registry = CollectorRegistry(auto_describe=True)
    # Bind first: a port already in use then fails before anything is attached.
    server, thread = start_http_server(port, addr=host, registry=registry)
    current = metrics.get_meter_provider() if set_global else None
    owns_provider = not isinstance(current, MeterProvider)
    reader = PrometheusMetricReader(registry=registry)
    if owns_provider:
        provider = MeterProvider(resource=Resource.create(), metric_readers=[reader])
        if set_global:
            metrics.set_meter_provider(provider)
    else:
        assert isinstance(current, MeterProvider)
        provider = current
        provider.add_metric_reader(reader)
    return PrometheusSetup(
        url=f"http://{host}:{server.server_port}/metrics",
        meter_provider=provider,
        reader=reader,
        _server=server,
        _thread=thread,
        _owns_provider=owns_provider,
    )


def _port(port: int | None, env: Mapping[str, str]) -> int:
    if port is not None:
        return port
    raw = env.get("OTEL_EXPORTER_PROMETHEUS_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        return int(raw)
    except ValueError:
        raise OTLPConfigurationError(
            f"OTEL_EXPORTER_PROMETHEUS_PORT is {raw!r}; it must be a port number such as 9464"
        ) from None
