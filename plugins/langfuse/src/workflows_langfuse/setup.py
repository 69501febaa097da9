"""``register()``: one call that sends every workflow run to Langfuse.

The Langfuse SDK does the sending: its ``LangfuseSpanProcessor`` (batching, Langfuse's
flush settings, the trace-root marking) exports through ``LangfuseMappingExporter``,
which adds Langfuse's attributes and posts OTLP to ``/api/public/otel/v1/traces``.
Three of the SDK's defaults do not suit a workflow engine and are set explicitly:

- its span filter keeps only known LLM instrumentation scopes; the engine's scope is
  added explicitly, so its spans are never dropped even if the scope name changes;
- it would install a tracer provider of its own as the global one; it is always given
  the provider this module chose;
- it keeps one client per public key and silently ignores the settings of a second
  one; ``register()`` detects that case and says so instead of exporting nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from langfuse import Langfuse
from langfuse.span_filter import is_default_export_span
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from workflows.instrumentation import InstrumentationHandler, get_dispatcher
from workflows.instrumentation.export_grace import GuardedSpanExporter, arm_at_exit
from workflows.instrumentation.settings import export_grace_seconds
from workflows.instrumentation.otel import TRACER_NAME, OpenTelemetryHandler
from workflows_langfuse.exporter import LangfuseMappingExporter
from workflows_langfuse.session import RunContextProcessor
from workflows_langfuse.settings import LangfuseConfigurationError, LangfuseSettings, resolve

logger = logging.getLogger("workflows_langfuse")

SpanFilter = Callable[[ReadableSpan], bool]


def is_workflow_span(span: ReadableSpan) -> bool:
    """Whether ``span`` was made by the workflow engine's instrumentation."""
    scope = span.instrumentation_scope
    return scope is not None and scope.name == TRACER_NAME


def default_span_filter(span: ReadableSpan) -> bool:
    """The engine's spans, plus what the Langfuse SDK exports by default (LLM
    instrumentations such as OpenInference's, ``gen_ai.*`` spans, the SDK's own)."""
    return is_workflow_span(span) or is_default_export_span(span)


@dataclass
class LangfuseSetup:
    """What ``register()`` configured. Keep it to flush or shut the export down.

    ``client`` is the Langfuse client (``langfuse.get_client()`` returns it too), usable
    for scores and the Langfuse API; ``exporter`` counts exported and failed spans.
    ``handler`` is the engine handler added for a non-global provider, else ``None``.
    All of them are ``None`` when ``LANGFUSE_TRACING_ENABLED=false`` turned tracing off.
    """

    settings: LangfuseSettings
    client: Langfuse | None = None
    tracer_provider: TracerProvider | None = None
    exporter: LangfuseMappingExporter | None = None
    handler: InstrumentationHandler | None = None
    _owns_provider: bool = field(default=False, repr=False)
    _shut_down: bool = field(default=False, repr=False)

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send every finished span now; ``False`` if that did not finish in time."""
        if self.tracer_provider is None:
            return True
        return bool(self.tracer_provider.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Flush, then stop: no later run is traced to Langfuse by this setup.

        Calling it again does nothing. A provider ``register()`` created is shut down;
        a shared one (another plugin's global provider, or the one passed in) keeps
        running for the others, with this setup's exporter closed.
        """
        if self._shut_down:
            return
        self._shut_down = True
        if self.exporter is not None:
            self.exporter.begin_end()  # what is left gets the grace, not a timeout per batch
        if self.handler is not None:
            get_dispatcher().remove_handler(self.handler)
        if self.client is not None:
            self.client.shutdown()  # flushes the provider, stops the SDK's upload threads
            _stop_prompt_cache_thread(self.client)
        if self.tracer_provider is not None and self._owns_provider:
            self.tracer_provider.shutdown()
        elif self.exporter is not None:
            self.exporter.shutdown()


def register(
    public_key: str | None = None,
    secret_key: str | None = None,
    host: str | None = None,
    set_global: bool = True,
    *,
    tracer_provider: TracerProvider | None = None,
    environment: str | None = None,
    release: str | None = None,
    timeout: float | None = None,
    sample_rate: float | None = None,
    flush_at: int | None = None,
    flush_interval: float | None = None,
    additional_headers: Mapping[str, str] | None = None,
    should_export_span: SpanFilter | None = None,
    export_grace: float | None = None,
) -> LangfuseSetup:
    """Send the engine's spans (and the LLM calls made inside steps) to Langfuse.

    Arguments left out come from Langfuse's usual variables: ``LANGFUSE_PUBLIC_KEY``,
    ``LANGFUSE_SECRET_KEY``, ``LANGFUSE_BASE_URL`` (or ``LANGFUSE_HOST``; default
    ``https://cloud.langfuse.com``), ``LANGFUSE_TRACING_ENVIRONMENT``,
    ``LANGFUSE_RELEASE``, ``LANGFUSE_TIMEOUT`` (seconds, default 5),
    ``LANGFUSE_SAMPLE_RATE``, ``LANGFUSE_FLUSH_AT`` / ``LANGFUSE_FLUSH_INTERVAL``
    (batching) and ``LANGFUSE_TRACING_ENABLED=false`` (turns the export off).

    Where spans are recorded: ``tracer_provider`` when given; else, with
    ``set_global=True``, the global SDK provider if another plugin installed one (so
    every backend gets the same spans), otherwise a new provider installed as the
    global one; with ``set_global=False``, a new private provider. When the provider is
    not the global one, an ``OpenTelemetryHandler`` recording into it is added to the
    root dispatcher (and removed by ``shutdown()``).

    ``should_export_span`` replaces the span filter (default: ``default_span_filter``).
    When the program ends (or ``shutdown()`` is called), what is left gets
    ``export_grace`` seconds in all (default ``WORKFLOWS_EXPORT_GRACE_SECONDS``, else 2)
    to reach Langfuse; what could not be sent is counted (``exporter.failed_spans``) and
    logged once.
    Raises ``LangfuseConfigurationError`` when a key is missing or a setting is
    invalid, or when a Langfuse client for the same public key already exists in this
    process (the SDK would ignore these settings and export nothing).
    """
    settings = resolve(
        public_key,
        secret_key,
        host,
        environment=environment,
        release=release,
        timeout=timeout,
        sample_rate=sample_rate,
        additional_headers=additional_headers,
    )
    export_grace_seconds(export_grace)  # a bad value fails before anything is set up
    if not settings.tracing_enabled:
        logger.info("Langfuse tracing is turned off (LANGFUSE_TRACING_ENABLED=false); nothing is exported")
        return LangfuseSetup(settings)

    provider, owned = _choose_provider(tracer_provider, set_global, settings)
    exporter = _mapping_exporter(settings)
    client = Langfuse(
        public_key=settings.public_key,
        secret_key=settings.secret_key,
        base_url=settings.base_url,
        timeout=max(1, round(settings.timeout)),
        environment=settings.environment,
        release=settings.release,
        sample_rate=settings.sample_rate,
        flush_at=flush_at,
        flush_interval=flush_interval,
        additional_headers=dict(settings.additional_headers) or None,
        should_export_span=should_export_span or default_span_filter,
        tracer_provider=provider,
        span_exporter=exporter,
    )
    if not _client_uses(client, provider):
        exporter.shutdown()
        if owned:
            provider.shutdown()
        raise LangfuseConfigurationError(
            f"a Langfuse client for public key {settings.public_key} already exists in this process "
            "(created by Langfuse(), get_client() or an earlier register()); the Langfuse SDK keeps one "
            "client per key and would ignore this setup, so workflow spans would not be sent. Call "
            "workflows_langfuse.register() once, before anything creates a Langfuse client, and use "
            "langfuse.get_client() afterwards: it returns the client register() made."
        )
    provider.add_span_processor(RunContextProcessor())
    if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    setup = LangfuseSetup(settings, client, provider, exporter, _owns_provider=owned)
    if trace.get_tracer_provider() is not provider:
        setup.handler = OpenTelemetryHandler(tracer_provider=provider, metrics=False)
        get_dispatcher().add_handler(setup.handler)
    logger.info("sending workflow traces to Langfuse at %s", settings.endpoint)
    arm_at_exit(export_grace)  # after the provider's and the client's exit hooks: runs before them
    return setup


def _mapping_exporter(settings: LangfuseSettings) -> LangfuseMappingExporter:
    otlp = OTLPSpanExporter(
        endpoint=settings.endpoint,
        headers=settings.headers,
        timeout=settings.timeout,
        compression=Compression.Gzip,  # the only encoding Langfuse decodes
    )
    guarded = GuardedSpanExporter(otlp, destination=settings.endpoint, log=logger)
    return LangfuseMappingExporter(
        guarded, endpoint=settings.endpoint, environment=settings.environment, release=settings.release
    )


def _choose_provider(
    given: TracerProvider | None, set_global: bool, settings: LangfuseSettings
) -> tuple[TracerProvider, bool]:
    """The provider to record into, and whether ``register()`` created it."""
    if given is not None:
        provider, owned = given, False
    elif set_global and isinstance(trace.get_tracer_provider(), TracerProvider):
        provider, owned = trace.get_tracer_provider(), False  # type: ignore[assignment]
        if settings.sample_rate < 1.0:
            logger.warning(
                "LANGFUSE_SAMPLE_RATE / sample_rate is not applied: the global tracer provider was "
                "created earlier with its own sampler"
            )
    else:
        attributes = {
            key: value
            for key, value in (("langfuse.environment", settings.environment), ("langfuse.release", settings.release))
            if value
        }
        provider = TracerProvider(
            resource=Resource.create(attributes),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_rate)) if settings.sample_rate < 1.0 else None,
        )
        owned = True
    return provider, owned


def _client_uses(client: Langfuse, provider: TracerProvider) -> bool:
    """Whether the SDK attached its processor to ``provider``, rather than handing back
    an earlier client for the same key.

    ``LangfuseResourceManager`` keeps one set of resources per public key and returns
    the existing one without applying new arguments, so this setup's provider would
    never get Langfuse's processor. The SDK offers no public way to ask, hence the
    guarded look at its resources (assumed fine when they cannot be read).
    """
    resources = getattr(client, "_resources", None)
    return getattr(resources, "tracer_provider", provider) is provider


def _stop_prompt_cache_thread(client: Langfuse) -> None:
    """Stop the prompt-cache refresh thread every Langfuse client starts.

    ``Langfuse.shutdown()`` leaves it running until interpreter exit (it is stopped by
    an ``atexit`` hook of its own); a setup that is shut down should leave no thread
    behind. Guarded, as the SDK exposes no public way to reach it.
    """
    cache = getattr(getattr(client, "_resources", None), "prompt_cache", None)
    task_manager = getattr(cache, "_task_manager", None)
    stop = getattr(task_manager, "shutdown", None)
    if callable(stop):
        stop()
