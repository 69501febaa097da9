"""A ``logging`` handler that sends Python log records as OpenTelemetry logs.

Records keep the trace context current where they were logged (inside a step: the
step's span), so each log line leads to its span, and records logged inside a run
also carry ``workflow.name`` and ``workflow.run_id``. The SDK's own ``LoggingHandler``
is deprecated in favour of a separate instrumentation package; this one does only what
the plugin needs.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber
from opentelemetry.context import get_current

from workflows.instrumentation import current_run

# Exporter and SDK failures are logged under these names; sending them back through
# the exporter that is failing would feed on itself.
_IGNORED_LOGGER_PREFIXES = ("opentelemetry", "grpc", "urllib3")

_SEVERITIES = (
    (logging.CRITICAL, SeverityNumber.FATAL, "FATAL"),
    (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
    (logging.WARNING, SeverityNumber.WARN, "WARN"),
    (logging.INFO, SeverityNumber.INFO, "INFO"),
    (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG"),
)


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    for threshold, number, text in _SEVERITIES:
        if levelno >= threshold:
            return number, text
    return SeverityNumber.TRACE, "TRACE"


class OTelLogHandler(logging.Handler):
    """Emit every record it receives through ``logger_provider``."""

    def __init__(self, logger_provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level=level)
        self._logger_provider = logger_provider

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_IGNORED_LOGGER_PREFIXES):
            return
        try:
            number, text = _severity(record.levelno)
            attributes: dict[str, Any] = {
                "code.file.path": record.pathname,
                "code.function.name": record.funcName,
                "code.line.number": record.lineno,
                "logger.name": record.name,
            }
            run = current_run.get()
            if run is not None:
                attributes["workflow.name"] = run.workflow_name
                attributes["workflow.run_id"] = run.run_id
            exception = record.exc_info[1] if record.exc_info else None
            self._logger_provider.get_logger(record.name).emit(
                LogRecord(
                    timestamp=int(record.created * 1e9),
                    context=get_current(),
                    severity_number=number,
                    severity_text=text,
                    body=self.format(record) if self.formatter else record.getMessage(),
                    attributes=attributes,
                    exception=exception,
                )
            )
        except Exception:
            self.handleError(record)
