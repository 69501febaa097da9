"""Send workflow traces, metrics and logs to any OpenTelemetry (OTLP) receiver.

One call does the whole set-up::

    import workflows_otlp
    workflows_otlp.register()  # everything from the standard OTEL_* variables

or, without code, ``WORKFLOWS_EXPORTERS=otlp`` (the ``otlp`` entry point of the
``workflows.exporters`` group). ``workflows_otlp.prometheus.serve_metrics`` (entry point
``prometheus``) serves the same metrics to a Prometheus scraper instead.
"""

from workflows_otlp.settings import OTLPConfigurationError, SignalSettings
from workflows_otlp.setup import OTLPSetup, register

__all__ = ["OTLPConfigurationError", "OTLPSetup", "SignalSettings", "register"]
