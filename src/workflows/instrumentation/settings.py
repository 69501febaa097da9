"""The ``WORKFLOWS_*`` settings of the instrumentation: every variable is named here, once.

Each setting has a reader that never raises on a bad value in the environment: tracing
must not break a program because of a typo in a variable, so a value that cannot be
used is ignored with a warning naming the variable and the accepted values. Values
passed as arguments are checked by the code that takes them, and raise.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

logger = logging.getLogger("workflows.instrumentation")

TRACING_VAR = "WORKFLOWS_TRACING"
"""``false`` keeps the default OpenTelemetry handler off the dispatcher."""
CAPTURE_CONTENT_VAR = "WORKFLOWS_CAPTURE_CONTENT"
"""``false`` drops payload values from spans (types, ids and sizes are kept)."""
MAX_PAYLOAD_BYTES_VAR = "WORKFLOWS_MAX_PAYLOAD_BYTES"
"""The cap of every payload attribute, in UTF-8 bytes."""
TRACE_DETAIL_VAR = "WORKFLOWS_TRACE_DETAIL"
"""``full`` (every span) or ``steps`` (run, step and wait spans; the rest as span events)."""
EXPORT_GRACE_VAR = "WORKFLOWS_EXPORT_GRACE_SECONDS"
"""How long, in all, the exporter plugins may spend sending what is left when the program ends."""
SEMCONV_OPT_IN_VAR = "OTEL_SEMCONV_STABILITY_OPT_IN"
"""OpenTelemetry's own switch to its newest, experimental conventions (a comma-separated list);
with ``gen_ai_latest_experimental`` in it, span names follow the GenAI conventions."""
GEN_AI_LATEST = "gen_ai_latest_experimental"

TraceDetail = Literal["full", "steps"]
TRACE_DETAILS: tuple[TraceDetail, ...] = ("full", "steps")
DEFAULT_TRACE_DETAIL: TraceDetail = "full"
DEFAULT_EXPORT_GRACE_SECONDS = 2.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean environment variable (``true/false``, ``1/0``, ``yes/no``, ``on/off``)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    logger.warning("%s=%r is not a boolean (use true or false); using %s", name, raw, default)
    return default


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    """Read an integer environment variable; a bad or too small value gives ``default``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        logger.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default
    if minimum is not None and value < minimum:
        logger.warning("%s=%d is below the minimum of %d; using %d", name, value, minimum, default)
        return default
    return value


def trace_detail(given: str | None = None) -> TraceDetail:
    """The trace detail: ``given`` when not ``None`` (raises ``ValueError`` if it is not
    one of ``full``, ``steps``), else ``WORKFLOWS_TRACE_DETAIL`` (default ``full``)."""
    if given is not None:
        if given not in TRACE_DETAILS:
            raise ValueError(
                f"detail={given!r} is not a trace detail: use 'full' (every span) or 'steps' "
                "(run, step and wait spans, with events and state changes as span events)"
            )
        return given
    raw = os.environ.get(TRACE_DETAIL_VAR, "").strip().lower()
    if not raw:
        return DEFAULT_TRACE_DETAIL
    if raw in TRACE_DETAILS:
        return raw
    logger.warning(
        "%s=%r is not a trace detail (use full or steps); using %s", TRACE_DETAIL_VAR, raw, DEFAULT_TRACE_DETAIL
    )
    return DEFAULT_TRACE_DETAIL


def gen_ai_span_names() -> bool:
    """Whether span names follow OpenTelemetry's GenAI conventions (``invoke_agent {name}``,
    ``execute_tool {name}``): ``OTEL_SEMCONV_STABILITY_OPT_IN`` lists ``gen_ai_latest_experimental``."""
    raw = os.environ.get(SEMCONV_OPT_IN_VAR, "")
    return GEN_AI_LATEST in (part.strip().lower() for part in raw.split(","))


def export_grace_seconds(given: float | None = None) -> float:
    """The exit grace of the exporter plugins: ``given`` when not ``None`` (raises
    ``ValueError`` unless it is a number of seconds >= 0), else
    ``WORKFLOWS_EXPORT_GRACE_SECONDS`` (default 2)."""
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, (int, float)) or not given >= 0:
            raise ValueError(
                f"export_grace={given!r} is not a number of seconds: give how long, in all, the export "
                "may go on when the program ends (for example 3; 0 drops what is left at once)"
            )
        return float(given)
    raw = os.environ.get(EXPORT_GRACE_VAR, "").strip()
    if not raw:
        return DEFAULT_EXPORT_GRACE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects nan
        logger.warning(
            "%s=%r is not a number of seconds >= 0; using %g", EXPORT_GRACE_VAR, raw, DEFAULT_EXPORT_GRACE_SECONDS
        )
        return DEFAULT_EXPORT_GRACE_SECONDS
    return value
