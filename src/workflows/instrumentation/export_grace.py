"""A bounded end for the exporter plugins: a dead backend never holds a program hostage.

When a program ends, the OpenTelemetry SDK sends what its processors still hold, and
waits for each export: with a backend that refuses connections or never answers, every
batch (and every metrics collection) costs the exporter's whole timeout and retries,
10 to 30 seconds or more. The exporter plugins wrap their exporters in the guards of
this module, which share one process-wide *exit grace*:

- when the program ends (an ``atexit`` hook that runs before the SDK's own), or when a
  plugin's ``shutdown()`` is called, the grace begins: from then on every export,
  flush and exporter shutdown waits at most until the grace is over, a few seconds in
  all (``WORKFLOWS_EXPORT_GRACE_SECONDS``, default 2), however many batches are left;
- exports run on a daemon thread of the guard, so the caller (the SDK's batch thread,
  or the thread ending a span for a synchronous processor) can stop waiting when the
  grace is over; a request stuck on a silent backend is left behind, and a daemon
  thread does not keep the interpreter alive;
- what could not be sent is counted (``unsent``) and logged once, when the exporter
  shuts down; the exporter's own per-batch error logs are muted once the grace began.

For the plugins, which depend on the OpenTelemetry SDK (the engine itself does not
import this module: it depends on ``opentelemetry-api`` only).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from workflows.instrumentation.settings import export_grace_seconds

T = TypeVar("T")

logger = logging.getLogger("workflows.instrumentation")


class ExitGrace:
    """The process's one grace period for sending what is left (see the module docstring).

    ``begin()`` starts it (the earliest end wins); ``remaining()`` is ``None`` before it
    began, then the seconds left (never below 0). Waiters on ``condition`` are woken
    when it begins, so a wait for an export can be cut short.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._deadline: float | None = None
        self.seconds = export_grace_seconds()

    def configure(self, seconds: float | None) -> None:
        """Use ``seconds`` (``None``: ``WORKFLOWS_EXPORT_GRACE_SECONDS``); with several
        plugins, the longest grace asked for is the one given to all, once."""
        chosen = export_grace_seconds(seconds)
        with self.condition:
            self.seconds = chosen if seconds is not None else max(self.seconds, chosen)

    def begin(self) -> None:
        with self.condition:
            deadline = time.monotonic() + self.seconds
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
            self.condition.notify_all()

    @property
    def begun(self) -> bool:
        return self._deadline is not None

    def remaining(self) -> float | None:
        deadline = self._deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def reset(self) -> None:
        """Forget that the grace began (for tests, which end many exporters in one process)."""
        with self.condition:
            self._deadline = None


GRACE = ExitGrace()


def _begin_at_exit() -> None:
    GRACE.begin()


def arm_at_exit(seconds: float | None = None) -> None:
    """Make the grace begin when the program ends, before every exit hook registered so
    far (the SDK providers' and the Langfuse client's, which send what is left).

    Each plugin calls it at the end of its ``register()``: ``atexit`` runs hooks last
    registered first, so registering again moves the hook ahead of the newer ones.
    ``seconds`` configures the grace (see ``ExitGrace.configure``).
    """
    GRACE.configure(seconds)
    atexit.unregister(_begin_at_exit)
    atexit.register(_begin_at_exit)


class _Job(Generic[T]):
    __slots__ = ("call", "result", "error", "done", "abandoned")

    def __init__(self, call: Callable[[], T]) -> None:
        self.call = call
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False
        self.abandoned = False


class _Sender:
    """A daemon thread that runs one guard's exports, one at a time, in order."""

    def __init__(self, name: str, guard: ExportGuard) -> None:
        self._name = name
        self._guard = guard
        self._jobs: queue.SimpleQueue[_Job[Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.ident: int | None = None

    def run(self, call: Callable[[], T], remaining: Callable[[], float | None]) -> _Job[T]:
        """Run ``call`` on the thread; wait until it is done or ``remaining()`` (seconds
        left, ``None`` for no bound) reaches 0. The job tells which (``done``)."""
        job: _Job[T] = _Job(call)
        self._start()
        self._jobs.put(job)
        with GRACE.condition:
            while not job.done:
                left = remaining()
                if left == 0.0:
                    job.abandoned = True  # skipped if it has not begun; left behind if it has
                    break
                GRACE.condition.wait(left)
        return job

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()

    def _work(self) -> None:
        self.ident = threading.get_ident()
        _MUTE.senders[self.ident] = self._guard
        while True:
            job = self._jobs.get()
            if job.abandoned:
                continue
            try:
                job.result = job.call()
            except BaseException as exc:  # reported to the waiting caller
                job.error = exc
            with GRACE.condition:
                job.done = True
                GRACE.condition.notify_all()


class _MuteWhileEnding(logging.Filter):
    """Drops the records an exporter logs from a guard's thread once its end began:
    the guard's one summary says what could not be sent."""

    def __init__(self) -> None:
        super().__init__()
        self.senders: dict[int | None, ExportGuard] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        guard = self.senders.get(record.thread)
        if guard is None:
            return True
        if guard.exporter_said is None:  # kept for the summary, which may come much later
            try:
                guard.exporter_said = record.getMessage()
            except Exception:
                guard.exporter_said = str(record.msg)
        return not guard.ending


_MUTE = _MuteWhileEnding()


class ExportGuard:
    """What the span, metric and log guards share: the sender thread, the counts and
    the one log line.

    ``destination`` names where the data goes in that line (a URL), ``what`` the items
    (``"span"``, ...), and ``log`` the plugin's logger.
    """

    def __init__(self, exporter: Any, *, destination: str, what: str, log: logging.Logger) -> None:
        self.exporter = exporter
        self.destination = destination
        self.what = what
        self.log = log
        self.sent = 0
        self.unsent = 0
        self.first_failure: str | None = None
        self.exporter_said: str | None = None  # the first thing the exporter logged from our thread
        self._count_lock = threading.Lock()
        self._reported = False
        self._closed = False
        self._deadline: float | None = None  # this exporter's own end, when shut down early
        self._sender = _Sender(f"workflows-export-{what}", self)
        _mute_loggers_of(exporter)

    @property
    def ending(self) -> bool:
        """Whether the program's end, or this exporter's shutdown, began."""
        return GRACE.begun or self._deadline is not None

    def begin_end(self) -> None:
        """This exporter is being shut down before the program ends: give what it holds
        the same grace, without cutting other exporters short."""
        with GRACE.condition:
            if self._deadline is None:
                self._deadline = time.monotonic() + GRACE.seconds
            GRACE.condition.notify_all()

    def remaining(self, limit: float | None = None) -> float | None:
        """Seconds left before exports must stop (``None``: no bound), within ``limit``."""
        left = GRACE.remaining()
        for deadline in (self._deadline, None if limit is None else time.monotonic() + limit):
            if deadline is not None:
                own = max(0.0, deadline - time.monotonic())
                left = own if left is None else min(left, own)
        return left

    def send(self, count: int, call: Callable[[], T], succeeded: Callable[[T], bool], limit: float | None = None) -> T | None:
        """Run one export of ``count`` items; ``None`` when it failed or was cut short."""
        if self._closed or self.remaining() == 0.0:
            self._failed(count, "the exporter was shut down" if self._closed else "the exit grace was over")
            return None
        until = None if limit is None else time.monotonic() + limit
        job = self._sender.run(call, lambda: self.remaining(None if until is None else until - time.monotonic()))
        if not job.done:
            self._failed(count, "no answer before the exit grace was over")
            return None
        if job.error is not None:
            self._failed(count, f"{type(job.error).__name__}: {job.error}")
            return None
        assert job.result is not None
        if succeeded(job.result):
            with self._count_lock:
                self.sent += count
            return job.result
        self._failed(count, "the backend did not take them (see the exporter's log)")
        return None

    def call(self, call: Callable[[], T], limit: float | None = None) -> T | None:
        """Run a flush or shutdown of the exporter, bounded like an export."""
        until = None if limit is None else time.monotonic() + limit
        job = self._sender.run(call, lambda: self.remaining(None if until is None else until - time.monotonic()))
        return job.result if job.done and job.error is None else None

    def close(self, shutdown: Callable[[], Any]) -> None:
        """Shut the exporter down within the grace (an explicit shutdown is an end too),
        and log what could not be sent, once."""
        self.begin_end()
        if self._closed:
            return
        self.call(shutdown)
        self._closed = True
        self.report()

    def report(self) -> None:
        with self._count_lock:
            if self._reported or not self.unsent:
                return
            self._reported = True
            unsent, sent, reason = self.unsent, self.sent, self.first_failure
        if self.exporter_said:
            reason = f"{reason} (the exporter said: {self.exporter_said[:500]})"
        self.log.warning(
            "%d workflow %s(s) could not be sent to %s (%d sent): %s. Workflows were not affected; "
            "the export was given %gs in all at the end (WORKFLOWS_EXPORT_GRACE_SECONDS).",
            unsent,
            self.what,
            self.destination,
            sent,
            reason,
            GRACE.seconds,
        )

    def _failed(self, count: int, reason: str) -> None:
        with self._count_lock:
            self.unsent += count
            if self.first_failure is None:
                self.first_failure = reason


def _mute_loggers_of(exporter: Any) -> None:
    """Attach the mute filter to the loggers of the exporter's modules (records are
    filtered by the logger they are logged on, not by its parents)."""
    for klass in type(exporter).__mro__:
        module = klass.__module__
        if module.startswith("opentelemetry.exporter"):
            for name in (module, "opentelemetry.exporter.otlp.common.http"):
                named = logging.getLogger(name)
                if _MUTE not in named.filters:
                    named.addFilter(_MUTE)


class GracefulBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` over a ``GuardedSpanExporter``: its shutdown gives what
    is left the grace, instead of the exporter's timeout for every batch.

    ``batch=False`` sends each span as soon as it ends (a batch of one), still from the
    processor's thread: unlike ``SimpleSpanProcessor``, a slow or dead backend never
    blocks the code that ends the span (a step, on the event loop).
    """

    def __init__(self, exporter: GuardedSpanExporter, *, batch: bool = True) -> None:
        if batch:
            super().__init__(exporter)
        else:
            super().__init__(exporter, max_export_batch_size=1, schedule_delay_millis=50)
        self.exporter = exporter

    def shutdown(self) -> None:
        self.exporter.guard.begin_end()
        super().shutdown()


class GuardedSpanExporter(SpanExporter):
    """A span exporter whose exports end with the exit grace (see the module docstring).

    ``unsent`` and ``sent`` count spans; ``destination`` is named in the one warning
    logged when spans could not be sent.
    """

    def __init__(self, exporter: SpanExporter, *, destination: str, log: logging.Logger = logger) -> None:
        self.guard = ExportGuard(exporter, destination=destination, what="span", log=log)
        self._exporter = exporter

    @property
    def unsent(self) -> int:
        return self.guard.unsent

    @property
    def sent(self) -> int:
        return self.guard.sent

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.guard.send(len(spans), lambda: self._exporter.export(spans), _span_ok)
        return SpanExportResult.SUCCESS if result is SpanExportResult.SUCCESS else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self.guard.call(lambda: self._exporter.force_flush(timeout_millis), timeout_millis / 1000))

    def shutdown(self) -> None:
        self.guard.close(self._exporter.shutdown)


def _span_ok(result: SpanExportResult) -> bool:
    return result is SpanExportResult.SUCCESS


class GuardedMetricExporter(MetricExporter):
    """A metric exporter whose exports end with the exit grace; ``unsent`` counts the
    collections (not the data points) that could not be sent."""

    def __init__(self, exporter: MetricExporter, *, destination: str, log: logging.Logger = logger) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self.guard = ExportGuard(exporter, destination=destination, what="metrics collection", log=log)
        self._exporter = exporter

    @property
    def unsent(self) -> int:
        return self.guard.unsent

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        result = self.guard.send(
            1,
            lambda: self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            _metrics_ok,
            timeout_millis / 1000,
        )
        return MetricExportResult.SUCCESS if result is MetricExportResult.SUCCESS else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return bool(self.guard.call(lambda: self._exporter.force_flush(timeout_millis), timeout_millis / 1000))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.guard.close(lambda: self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs))


def _metrics_ok(result: MetricExportResult) -> bool:
    return result is MetricExportResult.SUCCESS


class GuardedLogExporter:
    """A log record exporter whose exports end with the exit grace (the SDK's log
    exporter base class changed names across versions, hence no base class here)."""

    def __init__(self, exporter: Any, *, destination: str, log: logging.Logger = logger) -> None:
        self.guard = ExportGuard(exporter, destination=destination, what="log record", log=log)
        self._exporter = exporter

    @property
    def unsent(self) -> int:
        return self.guard.unsent

    def export(self, batch: Sequence[Any]) -> Any:
        failure = _log_failure(self._exporter)
        result = self.guard.send(len(batch), lambda: self._exporter.export(batch), lambda r: r is not failure)
        return failure if result is None else result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self.guard.call(lambda: self._exporter.force_flush(timeout_millis), timeout_millis / 1000))

    def shutdown(self) -> None:
        self.guard.close(self._exporter.shutdown)


def _log_failure(exporter: Any) -> Any:
    from opentelemetry.sdk._logs import export as log_export

    result_type = getattr(log_export, "LogRecordExportResult", None) or log_export.LogExportResult
    return result_type.FAILURE
